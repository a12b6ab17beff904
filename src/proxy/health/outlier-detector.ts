import { SwitchboardError } from '../../errors';
import type { Logger } from '../../log';
import { counter } from '../../metrics';
import { realScheduler, type Scheduler } from '../scheduler';
import { withDefaults } from '../with-defaults';

/**
 * How one forwarded request ended, as outlier detection counts it. `gateway_failure` is
 * connect refused / reset / timeout, or 502/503/504 from the upstream (Envoy's
 * consecutive_gateway_failure); it also counts as a 5xx, as in Envoy.
 */
export type RequestOutcome = 'success' | 'http_5xx' | 'gateway_failure';

export type EjectionReason = 'consecutive_5xx' | 'consecutive_gateway_failure';

export interface OutlierConfig {
  /** Consecutive 5xx (gateway failures included) that eject a host; 0 disables. */
  consecutive5xx: number;
  /** Consecutive gateway failures that eject a host; 0 disables. */
  consecutiveGatewayFailure: number;
  /** First ejection lasts this long; each repeat adds another base (Envoy). */
  baseEjectionMs: number;
  maxEjectionMs: number;
  /** Share of the service's hosts that may be ejected at once; one host always may. */
  maxEjectionPercent: number;
  /** While a host is back in rotation, its repeat count drops by one per this period. */
  decayIntervalMs: number;
}

/**
 * Envoy's defaults, except consecutiveGatewayFailure: Envoy counts gateway failures but does
 * not eject on them by default (enforcing_consecutive_gateway_failure 0); we eject after 3,
 * because a dead instance fails fast with connect errors and should leave fast.
 * decayIntervalMs is Envoy's `interval` (10 s), which paces its multiplier decay.
 */
export const OUTLIER_DEFAULTS: Readonly<OutlierConfig> = Object.freeze({
  consecutive5xx: 5,
  consecutiveGatewayFailure: 3,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 10,
  decayIntervalMs: 10_000,
});

export interface OutlierDetectorOptions {
  service: string;
  config?: Partial<OutlierConfig>;
  /** Edges only: `true` when a host is ejected, `false` when it returns. */
  onChange: (id: string, ejected: boolean) => void;
  scheduler?: Scheduler;
  logger?: Logger;
}

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  /** Ejections so far, before decay. */
  timesEjected: number;
  /** When the host last came back (decay runs from here). */
  returnedAt: number;
  cancelReturn?: () => void;
}

const ejectionsTotal = counter('switchboard_proxy_ejections_total', 'Hosts ejected by outlier detection.', ['service', 'reason']);
const overflowTotal = counter(
  'switchboard_proxy_ejections_overflow_total',
  'Ejections skipped because maxEjectionPercent of the service was already ejected.',
  ['service'],
);

/**
 * Passive health checking (outlier detection) for one service: counts consecutive failures
 * per host from real traffic and ejects a host for baseEjectionMs × times ejected (capped).
 * A timer brings it back. Outcomes of unknown hosts, and of requests that finish while their
 * host is ejected, are ignored.
 */
export class OutlierDetector {
  readonly service: string;
  readonly config: Readonly<OutlierConfig>;
  private readonly onChange: (id: string, ejected: boolean) => void;
  private readonly scheduler: Scheduler;
  private readonly log?: Logger;
  private readonly hosts = new Map<string, HostState>();
  private ejected = 0;

  constructor(options: OutlierDetectorOptions) {
    this.service = options.service;
    this.config = validateOutlierConfig(withDefaults(OUTLIER_DEFAULTS, options.config));
    this.onChange = options.onChange;
    this.scheduler = options.scheduler ?? realScheduler;
    this.log = options.logger?.child({ component: 'outlier-detector', service: options.service });
  }

  /** The service's current hosts; the ejection cap is a share of these. */
  setHosts(ids: Iterable<string>): void {
    const next = new Set(ids);
    for (const [id, state] of this.hosts) {
      if (next.has(id)) continue;
      this.forget(state);
      this.hosts.delete(id);
    }
    for (const id of next) {
      if (!this.hosts.has(id)) this.hosts.set(id, newHostState());
    }
  }

  record(id: string, outcome: RequestOutcome): void {
    const state = this.hosts.get(id);
    if (!state || state.cancelReturn) return;
    countOutcome(state, outcome);
    const reason = this.dueReason(state);
    if (reason) this.tryEject(id, state, reason);
  }

  isEjected(id: string): boolean {
    return this.hosts.get(id)?.cancelReturn !== undefined;
  }

  get ejectedCount(): number {
    return this.ejected;
  }

  /** Cancels every return timer; ejected hosts stay ejected (the detector is going away). */
  stop(): void {
    for (const state of this.hosts.values()) this.forget(state);
    this.hosts.clear();
  }

  private dueReason(state: HostState): EjectionReason | undefined {
    const { consecutiveGatewayFailure, consecutive5xx } = this.config;
    if (consecutiveGatewayFailure > 0 && state.consecutiveGateway >= consecutiveGatewayFailure) return 'consecutive_gateway_failure';
    if (consecutive5xx > 0 && state.consecutive5xx >= consecutive5xx) return 'consecutive_5xx';
    return undefined;
  }

  /** Envoy's cap: eject while the ejected share is below the max, and always one host. */
  private mayEject(): boolean {
    return this.ejected === 0 || this.ejected * 100 < this.config.maxEjectionPercent * this.hosts.size;
  }

  private tryEject(id: string, state: HostState, reason: EjectionReason): void {
    if (!this.mayEject()) {
      // Counters stay at the threshold, so the host goes at its next failure once room frees.
      overflowTotal.inc({ service: this.service });
      return;
    }
    const now = this.scheduler.now();
    state.timesEjected = decayedTimes(state, now, this.config.decayIntervalMs) + 1;
    const durationMs = Math.min(this.config.baseEjectionMs * state.timesEjected, this.config.maxEjectionMs);
    state.consecutive5xx = 0;
    state.consecutiveGateway = 0;
    state.cancelReturn = this.scheduler.schedule(durationMs, () => this.bringBack(id, state));
    this.ejected++;
    ejectionsTotal.inc({ service: this.service, reason });
    this.log?.warn({ instance: id, reason, durationMs, timesEjected: state.timesEjected }, 'instance ejected');
    this.onChange(id, true);
  }

  private bringBack(id: string, state: HostState): void {
    state.cancelReturn = undefined;
    state.returnedAt = this.scheduler.now();
    this.ejected--;
    this.log?.info({ instance: id }, 'ejected instance returns');
    this.onChange(id, false);
  }

  private forget(state: HostState): void {
    if (!state.cancelReturn) return;
    state.cancelReturn();
    state.cancelReturn = undefined;
    this.ejected--;
  }
}

function newHostState(): HostState {
  return { consecutive5xx: 0, consecutiveGateway: 0, timesEjected: 0, returnedAt: 0 };
}

function countOutcome(state: HostState, outcome: RequestOutcome): void {
  switch (outcome) {
    case 'success':
      state.consecutive5xx = 0;
      state.consecutiveGateway = 0;
      return;
    case 'http_5xx':
      // Envoy: a non-gateway 5xx breaks a run of gateway failures.
      state.consecutive5xx++;
      state.consecutiveGateway = 0;
      return;
    case 'gateway_failure':
      state.consecutive5xx++;
      state.consecutiveGateway++;
      return;
  }
}

/** Times ejected after one decrement per full decay interval spent back in rotation. */
function decayedTimes(state: HostState, now: number, decayIntervalMs: number): number {
  if (state.timesEjected === 0) return 0;
  const periods = Math.floor((now - state.returnedAt) / decayIntervalMs);
  return Math.max(0, state.timesEjected - periods);
}

const GATEWAY_STATUSES = new Set([502, 503, 504]);

/** Maps what the forwarder saw to an outcome: a status, or an error (no response at all). */
export function classifyOutcome(result: { status?: number; error?: string }): RequestOutcome {
  if (result.error !== undefined || result.status === undefined) return 'gateway_failure';
  if (GATEWAY_STATUSES.has(result.status)) return 'gateway_failure';
  return result.status >= 500 ? 'http_5xx' : 'success';
}

function validateOutlierConfig(config: OutlierConfig): Readonly<OutlierConfig> {
  const nonNegative: (keyof OutlierConfig)[] = ['consecutive5xx', 'consecutiveGatewayFailure', 'maxEjectionPercent'];
  const positive: (keyof OutlierConfig)[] = ['baseEjectionMs', 'maxEjectionMs', 'decayIntervalMs'];
  for (const field of nonNegative) if (!(config[field] >= 0)) invalid(field, 'must be >= 0');
  for (const field of positive) if (!(config[field] > 0)) invalid(field, 'must be > 0');
  if (config.maxEjectionPercent > 100) invalid('maxEjectionPercent', 'must be <= 100');
  if (config.maxEjectionMs < config.baseEjectionMs) invalid('maxEjectionMs', 'must be >= baseEjectionMs');
  return Object.freeze(config);
}

function invalid(field: string, reason: string): never {
  throw new SwitchboardError('config_invalid', `outlier detection ${field}: ${reason}`, { field });
}
