import { effectiveWeight, type Instance } from '../catalog/model';
import { createBalancer, type Balancer, type PickRequest } from './balancers/balancer';
import type { PanicMode } from './health/panic';
import { applyLatencyWeights, type LatencyAwareConfig } from './latency-weights';
import { NO_SLOW_START, slowStartFactor, type SlowStartConfig } from './slow-start';
import { Upstream, type PoolState, type UpstreamOptions } from './upstream';

export interface PoolOptions extends UpstreamOptions {
  slowStart?: Readonly<SlowStartConfig>;
  /** Re-evaluated whenever the share of locally healthy upstreams may have changed. */
  panic?: PanicMode;
  /** Latency-aware weights; off when absent. */
  latencyAware?: Readonly<LatencyAwareConfig>;
  /** The latency outlier rule: called for an instance `slowFactor` × slower than the median. */
  slowFactor?: number;
  onSlow?: (id: string) => void;
  /** Clock for slow start and latency averages (ms). */
  now?: () => number;
}

/** How often latency-aware weights are recomputed, at most (on a pick, never on a timer). */
const LATENCY_REFRESH_MS = 100;

const LATENCY_OFF: Readonly<LatencyAwareConfig> = Object.freeze({ enabled: false, decay: 1000, tolerance: 1, minWeightPercent: 100 });

/**
 * The upstreams of one service that the registry puts in rotation: instances whose effective
 * weight is above 0. A critical instance leaves on the catalog update that reports it; an
 * instance that leaves drains rather than being cut. Local health (ejection, probes) only
 * flips flags on the upstreams; the panic threshold is evaluated on those edges, never per
 * request.
 */
export class Pool {
  readonly service: string;
  private readonly balancer: Balancer;
  private readonly state: PoolState = { panic: false };
  private readonly slowStart: Readonly<SlowStartConfig>;
  private readonly panic: PanicMode | undefined;
  private readonly now: () => number;
  private rotation: Upstream[] = [];
  private instanceCount = 0;
  /** Set after the first non-empty update: instances already there at start do not warm up. */
  private populated = false;
  private warming = 0;
  private readonly latencyAware: Readonly<LatencyAwareConfig>;
  private readonly slowFactor: number;
  private latencyRefreshedAt = 0;

  constructor(
    service: string,
    private readonly options: PoolOptions,
    balancer: Balancer = createBalancer(),
  ) {
    this.service = service;
    this.balancer = balancer;
    this.slowStart = options.slowStart ?? NO_SLOW_START;
    this.panic = options.panic;
    this.now = options.now ?? Date.now;
    this.latencyAware = options.latencyAware ?? LATENCY_OFF;
    this.slowFactor = options.slowFactor ?? 0;
  }

  /** The catalog lists at least one instance, whatever its health. */
  get exists(): boolean {
    return this.instanceCount > 0;
  }

  get upstreams(): readonly Upstream[] {
    return this.rotation;
  }

  get inPanic(): boolean {
    return this.state.panic;
  }

  /** Returns the ids whose upstream was replaced by a new endpoint (address or port changed). */
  update(instances: readonly Instance[]): string[] {
    this.instanceCount = instances.length;
    const current = new Map(this.rotation.map((u) => [u.id, u]));
    const next: Upstream[] = [];
    const replaced: string[] = [];
    for (const instance of instances) {
      const weight = effectiveWeight(instance);
      if (weight <= 0) continue;
      let upstream = current.get(instance.id);
      if (upstream && upstream.sameEndpoint(instance)) {
        current.delete(instance.id);
        upstream.instance = instance;
        upstream.baseWeight = weight;
        upstream.refreshWeight();
      } else {
        if (upstream) replaced.push(instance.id);
        upstream = new Upstream(instance, this.options, this.state);
        if (this.populated) this.startWarming(upstream);
      }
      next.push(upstream);
    }
    for (const gone of current.values()) gone.drain();
    this.rotation = next;
    if (next.length > 0) this.populated = true;
    this.warming = next.reduce((n, u) => n + (u.warmingSince > 0 ? 1 : 0), 0);
    if (this.warming > 0) this.refreshWarmWeights();
    this.balancer.update(next);
    this.refreshPanic();
    return replaced;
  }

  /** Sets every upstream's local verdicts at once (after a catalog update made new ones). */
  syncHealth(isEjected: (id: string) => boolean, probeHealthy: (id: string) => boolean): void {
    for (const u of this.rotation) {
      u.setEjected(isEjected(u.id));
      u.setProbeFailing(!probeHealthy(u.id));
    }
    this.refreshPanic();
  }

  /**
   * `exclude`: upstreams a retry should avoid. When every available upstream is excluded the
   * balancer picks among them anyway: a retry on the same instance beats none.
   */
  pick(request: PickRequest, exclude?: readonly Upstream[]): Upstream | undefined {
    if (this.rotation.length === 0) return undefined;
    if (this.warming > 0) this.refreshWarmWeights();
    if (this.tracksLatency) this.refreshLatencyWeights();
    if (exclude === undefined) return this.balancer.pick(this.rotation, request);
    return this.balancer.pick(this.rotation, request, exclude) ?? this.balancer.pick(this.rotation, request);
  }

  /** A try on `upstream` got an answer (or timed out) after `ms`. */
  observeLatency(upstream: Upstream, ms: number): void {
    if (this.tracksLatency) upstream.latency.observe(ms, this.now(), this.latencyAware.decay);
  }

  private get tracksLatency(): boolean {
    return this.latencyAware.enabled || this.slowFactor > 0;
  }

  /** Outlier detection ejected (true) or returned (false) an instance. */
  setEjected(id: string, ejected: boolean): void {
    const upstream = this.find(id);
    if (upstream && upstream.setEjected(ejected)) this.healthChanged(upstream);
  }

  /** Active probes took an instance out (false) or brought it back (true). */
  setProbeHealthy(id: string, healthy: boolean): void {
    const upstream = this.find(id);
    if (upstream && upstream.setProbeFailing(!healthy)) this.healthChanged(upstream);
  }

  /** The service left the catalog: drain everything. */
  drain(): void {
    this.update([]);
  }

  destroy(): void {
    for (const u of this.rotation) u.destroy();
    this.rotation = [];
    this.instanceCount = 0;
    this.balancer.update(this.rotation);
    this.refreshPanic();
  }

  private find(id: string): Upstream | undefined {
    return this.rotation.find((u) => u.id === id);
  }

  private healthChanged(upstream: Upstream): void {
    if (upstream.locallyHealthy) {
      // A returning instance warms up again, like a new one, and is judged on fresh answers.
      if (this.startWarming(upstream)) this.warming++;
      upstream.latency.reset();
      upstream.latencyFactor = 1;
      upstream.refreshWeight();
    }
    this.refreshPanic();
  }

  /** True when the upstream was not warming before. */
  private startWarming(upstream: Upstream): boolean {
    if (this.slowStart.window <= 0) return false;
    const wasWarming = upstream.warmingSince > 0;
    upstream.warmingSince = Math.max(1, this.now());
    upstream.warmFactor = slowStartFactor(this.slowStart, 0);
    upstream.refreshWeight();
    return !wasWarming;
  }

  private refreshWarmWeights(): void {
    const now = this.now();
    for (const u of this.rotation) {
      if (u.warmingSince === 0) continue;
      const factor = slowStartFactor(this.slowStart, now - u.warmingSince);
      u.warmFactor = factor;
      u.refreshWeight();
      if (factor >= 1) {
        u.warmingSince = 0;
        this.warming--;
      }
    }
  }

  private refreshLatencyWeights(): void {
    const now = this.now();
    if (now - this.latencyRefreshedAt < LATENCY_REFRESH_MS) return;
    this.latencyRefreshedAt = now;
    const { slow } = applyLatencyWeights(this.rotation, this.latencyAware, this.slowFactor);
    for (const u of slow) this.options.onSlow?.(u.id);
  }

  private refreshPanic(): void {
    if (!this.panic) return;
    let healthy = 0;
    for (const u of this.rotation) if (u.locallyHealthy) healthy++;
    this.state.panic = this.panic.update(this.rotation.length, healthy);
  }
}
