/**
 * The shared catalog model: what the registry stores and what proxies route on.
 * Field names are our own (camelCase); the registry API maps them to Consul's JSON shapes.
 */

export type HealthStatus = 'passing' | 'warning' | 'critical';

/** Severity order used to combine checks: an instance is as healthy as its worst check. */
const SEVERITY: Record<HealthStatus, number> = { passing: 0, warning: 1, critical: 2 };

/**
 * ttl/http/tcp/script: Consul's agent checks. `maintenance`: the critical check maintenance
 * mode adds. `external`: registered through /v1/catalog/register, its status set by whoever
 * registers it (consul-esm and the like); neither is run or expired here.
 */
export type CheckType = 'ttl' | 'http' | 'tcp' | 'script' | 'maintenance' | 'external';

export interface Check {
  checkId: string;
  name: string;
  type: CheckType;
  status: HealthStatus;
  output: string;
  notes?: string;
  /** Wall-clock ms when `status` last changed; drives DeregisterCriticalServiceAfter. */
  statusSince: number;
  ttlMs?: number;
  intervalMs?: number;
  timeoutMs?: number;
  /** HTTP check target URL. */
  http?: string;
  method?: string;
  header?: Record<string, string[]>;
  /** TCP check target `host:port`. */
  tcp?: string;
  /** Script check: the program and its arguments, run without a shell. */
  args?: string[];
  deregisterCriticalAfterMs?: number;
}

export interface Weights {
  passing: number;
  warning: number;
}

export interface Instance {
  id: string;
  service: string;
  address: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
  weights: Weights;
  checks: Check[];
  /**
   * Drained from the web UI (or /v1/switchboard/drain): no new requests, whatever its
   * health; requests in flight finish. Survives re-registration until undrained.
   */
  drained?: boolean;
  /** Store revision that created / last modified this record (Consul's CreateIndex/ModifyIndex). */
  createIndex: number;
  modifyIndex: number;
}

export const DEFAULT_WEIGHTS: Weights = Object.freeze({ passing: 1, warning: 1 });

export function worstStatus(statuses: Iterable<HealthStatus>): HealthStatus {
  let worst: HealthStatus = 'passing';
  for (const s of statuses) if (SEVERITY[s] > SEVERITY[worst]) worst = s;
  return worst;
}

/** Instance health = worst of its checks; an instance without checks is passing (Consul). */
export function instanceHealth(instance: Pick<Instance, 'checks'>): HealthStatus {
  return worstStatus(instance.checks.map((c) => c.status));
}

/** The weight a balancer should use, or 0 when the instance must not get traffic. */
export function effectiveWeight(instance: Instance): number {
  if (instance.drained === true) return 0;
  switch (instanceHealth(instance)) {
    case 'passing':
      return instance.weights.passing;
    case 'warning':
      return instance.weights.warning;
    default:
      return 0;
  }
}

/** A whole catalog at one revision, grouped by service name. */
export interface CatalogSnapshot {
  rev: number;
  services: Record<string, Instance[]>;
}

/**
 * What changed since a revision: for every service touched, its full current instance list
 * (empty = the service is gone). `full` means the source could not compute a delta (history
 * compacted, or `since` is 0) and `services` is the whole catalog: replace, don't merge.
 */
export interface CatalogDelta {
  rev: number;
  full: boolean;
  services: Record<string, Instance[]>;
}
