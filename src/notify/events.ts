import type { SwitchboardConfig } from '../config/types';

/**
 * What is worth telling someone about, and who wants to hear it. Events are state changes,
 * never check runs: an instance turned critical or recovered, a service lost its last passing
 * instance or got one back (the registry's leader says so), a proxy ejected an instance (that
 * proxy says so), a registry became the leader.
 */
export type NotifyConfig = SwitchboardConfig['notify'];
export type WebhookRule = NotifyConfig['webhooks'][number];
export type NotifyEventName = WebhookRule['events'][number];

export interface NotifyEvent {
  event: NotifyEventName;
  /** ISO 8601, when the change was observed. */
  time: string;
  service?: string;
  instance?: { id: string; address: string; port: number; tags: string[] };
  /** passing, warning or critical (instance events). */
  status?: string;
  /** The instance's checks when it changed: what an on-call person reads first. */
  checks?: Array<{ id: string; name: string; status: string; output: string }>;
  /** instance-ejected: the proxy that ejected it and why. */
  proxy?: string;
  reason?: string;
  /** leader-change: the registry that leads now. */
  leader?: string;
}

/** Whether `rule` wants `event` (its events, services — exact or `prefix*` — and tags). */
export function wants(rule: Pick<WebhookRule, 'events' | 'services' | 'tags'>, event: NotifyEvent): boolean {
  if (!rule.events.includes(event.event)) return false;
  // Events about no service (leader changes) pass the service and tag filters.
  if (event.service === undefined) return true;
  if (rule.services.length > 0 && !rule.services.some((s) => (s.endsWith('*') ? event.service?.startsWith(s.slice(0, -1)) : s === event.service))) return false;
  if (rule.tags.length > 0 && !rule.tags.some((t) => event.instance?.tags.includes(t))) return false;
  return true;
}
