import type { ServicePolicy } from '../../config/types';
import type { Logger } from '../../log';
import { counter } from '../../metrics';
import { isGatewayStatus } from '../gateway-status';
import { realScheduler, type Scheduler } from '../../clock';

/**
 * How one forwarded request ended, as outlier detection counts it. `gateway_failure` is
 * connect refused / reset / timeout, or 502/503/504 from the upstream (Envoy's
 * consecutive_gateway_failure); it also counts as a 5xx, as in Envoy.
 */
export type RequestOutcome = 'success' | 'http_5xx' | 'gateway_failure';

export type EjectionReason = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'latency';

/**
 * The service's `outlierDetection` policy (src/config/schema.ts has the defaults and why:
 * Envoy's, except that 3 gateway failures in a row eject, where Envoy only counts them;
 * `decayInterval` is Envoy's `interval`, which paces its multiplier decay).
 */
export type OutlierConfig = ServicePolicy['outlierDetection'];

export interface OutlierDetectorOptions {
  service: string;
  config: Readonly<OutlierConfig>;
  /** Edges only: `true` when a host is ejected, `false` when it returns. */
  onChange: (id: string, ejected: boolean, reason?: EjectionReason) => void;
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
  /** While ejected: why, and when it comes back (scheduler ms). */
  ejectedReason?: EjectionReason;
  ejectedUntil?: number;
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
  private readonly onChange: (id: string, ejected: boolean, reason?: EjectionReason) => void;
  private readonly scheduler: Scheduler;
  private readonly log?: Logger;
  private readonly hosts = new Map<string, HostState>();
  private ejected = 0;

  constructor(options: OutlierDetectorOptions) {
    this.service = options.service;
    this.config = options.config;
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

  /** The latency outlier rule found the host far slower than its peers (latency-weights.ts). */
  slow(id: string): void {
    const state = this.hosts.get(id);
    if (state && !state.cancelReturn) this.tryEject(id, state, 'latency');
  }

  isEjected(id: string): boolean {
    return this.hosts.get(id)?.cancelReturn !== undefined;
  }

  /** Why and until when (scheduler ms) a host is ejected; undefined when it is not. */
  ejection(id: string): { reason: EjectionReason; until: number } | undefined {
    const state = this.hosts.get(id);
    if (state?.cancelReturn === undefined || state.ejectedReason === undefined) return undefined;
    return { reason: state.ejectedReason, until: state.ejectedUntil ?? 0 };
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
    state.timesEjected = decayedTimes(state, now, this.config.decayInterval) + 1;
    const durationMs = Math.min(this.config.baseEjectionTime * state.timesEjected, this.config.maxEjectionTime);
    state.consecutive5xx = 0;
    state.consecutiveGateway = 0;
    state.cancelReturn = this.scheduler.schedule(durationMs, () => this.bringBack(id, state));
    state.ejectedReason = reason;
    state.ejectedUntil = now + durationMs;
    this.ejected++;
    ejectionsTotal.inc({ service: this.service, reason });
    this.log?.warn({ instance: id, reason, durationMs, timesEjected: state.timesEjected }, 'instance ejected');
    this.onChange(id, true, reason);
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


/** Maps what the forwarder saw to an outcome: a status, or an error (no response at all). */
export function classifyOutcome(result: { status?: number; error?: string }): RequestOutcome {
  if (result.error !== undefined || result.status === undefined) return 'gateway_failure';
  if (isGatewayStatus(result.status)) return 'gateway_failure';
  return result.status >= 500 ? 'http_5xx' : 'success';
}
