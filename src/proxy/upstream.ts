import { effectiveWeight, type Instance } from '../catalog/model';
import { createBalancer, type Balancer, type PickRequest } from './balancers/balancer';
import { UpstreamConnections, originOf, type TransportOptions } from './forward/transport';
import type { PanicMode } from './health/panic';
import { NO_SLOW_START, slowStartFactor, type SlowStartConfig } from './slow-start';

/** How an upstream's connections behave (src/proxy/forward/transport.ts). */
export type UpstreamOptions = TransportOptions;

/** Shared by the upstreams of one pool. In panic, local health verdicts are set aside. */
export interface PoolState {
  panic: boolean;
}

/** For upstreams made outside a pool: never in panic. Never written to. */
const NO_POOL: PoolState = Object.freeze({ panic: false }) as PoolState;

/**
 * One instance as the data plane sees it: where it is, how much traffic it should get, how
 * many requests it is serving, whether this proxy considers it healthy, and the keep-alive
 * pool that holds its connections. Balancers ask only `available()` and `weight`.
 *
 * Available = the registry lists it as passing or warning (weight > 0), it is not leaving
 * (deregistered, drained), and outlier detection has not ejected it and active probes are
 * not failing — unless its pool is in panic, where the local verdicts are ignored.
 */
export class Upstream {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  instance: Instance;
  /** Consul weight for the instance's current health; 0 = no traffic. */
  baseWeight: number;
  /** What balancers use: `baseWeight`, scaled down during slow start. */
  weight: number;
  inFlight = 0;
  /** Made on first use: a catalog of 100,000 instances must not cost 100,000 idle pools. */
  private lazyConnections: UpstreamConnections | undefined;
  private readonly transport: TransportOptions;
  /** When its current slow start began (pool clock); 0 = not warming up. */
  warmingSince = 0;
  private ejectedNow = false;
  private probeFailingNow = false;
  /** Neither ejected nor failing probes: kept as one field for `available()`. */
  private healthy = true;
  private leaving = false;
  private readonly pool: PoolState;

  constructor(instance: Instance, options: UpstreamOptions, pool: PoolState = NO_POOL) {
    this.id = instance.id;
    this.address = instance.address;
    this.port = instance.port;
    this.instance = instance;
    this.baseWeight = effectiveWeight(instance);
    this.weight = this.baseWeight;
    this.pool = pool;
    this.transport = options;
  }

  /** Its keep-alive connections. */
  get connections(): UpstreamConnections {
    this.lazyConnections ??= new UpstreamConnections(originOf(this.address, this.port), this.transport);
    return this.lazyConnections;
  }

  available(): boolean {
    return this.weight > 0 && !this.leaving && (this.healthy || this.pool.panic);
  }

  /** Not ejected and not failing active probes (what the panic threshold counts). */
  get locallyHealthy(): boolean {
    return this.healthy;
  }

  get ejected(): boolean {
    return this.ejectedNow;
  }

  get probeFailing(): boolean {
    return this.probeFailingNow;
  }

  get draining(): boolean {
    return this.leaving;
  }

  /** Returns true when that changed whether the upstream is locally healthy. */
  setEjected(ejected: boolean): boolean {
    this.ejectedNow = ejected;
    return this.refreshHealthy();
  }

  setProbeFailing(failing: boolean): boolean {
    this.probeFailingNow = failing;
    return this.refreshHealthy();
  }

  /** An address or port change is a different endpoint: it gets a new upstream. */
  sameEndpoint(instance: Instance): boolean {
    return instance.address === this.address && instance.port === this.port;
  }

  acquire(): void {
    this.inFlight++;
  }

  release(): void {
    this.inFlight--;
    if (this.leaving && this.inFlight === 0) this.lazyConnections?.close();
  }

  /**
   * A connection broke: the instance probably restarted or died, and its other idle
   * connections with it. Starting afresh makes the next request open a new connection, whose
   * refusal is retriable for every method, instead of writing a POST into a dead socket.
   */
  resetConnections(): void {
    this.lazyConnections?.reset();
  }

  /** Leave rotation; in-flight requests finish, then the connections are closed. */
  drain(): void {
    if (this.leaving) return;
    this.leaving = true;
    if (this.inFlight === 0) this.lazyConnections?.close();
  }

  /** Shutdown: close every connection now. */
  destroy(): void {
    this.leaving = true;
    this.lazyConnections?.destroy();
  }

  private refreshHealthy(): boolean {
    const healthy = !this.ejectedNow && !this.probeFailingNow;
    if (healthy === this.healthy) return false;
    this.healthy = healthy;
    return true;
  }
}

export interface PoolOptions extends UpstreamOptions {
  slowStart?: Readonly<SlowStartConfig>;
  /** Re-evaluated whenever the share of locally healthy upstreams may have changed. */
  panic?: PanicMode;
  /** Clock for slow start (ms). */
  now?: () => number;
}

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
        upstream.weight = weight;
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
    if (exclude === undefined) return this.balancer.pick(this.rotation, request);
    return this.balancer.pick(this.rotation, request, exclude) ?? this.balancer.pick(this.rotation, request);
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
    // A returning instance warms up again, like a new one.
    if (upstream.locallyHealthy && this.startWarming(upstream)) this.warming++;
    this.refreshPanic();
  }

  /** True when the upstream was not warming before. */
  private startWarming(upstream: Upstream): boolean {
    if (this.slowStart.window <= 0) return false;
    const wasWarming = upstream.warmingSince > 0;
    upstream.warmingSince = Math.max(1, this.now());
    upstream.weight = upstream.baseWeight * slowStartFactor(this.slowStart, 0);
    return !wasWarming;
  }

  private refreshWarmWeights(): void {
    const now = this.now();
    for (const u of this.rotation) {
      if (u.warmingSince === 0) continue;
      const factor = slowStartFactor(this.slowStart, now - u.warmingSince);
      u.weight = u.baseWeight * factor;
      if (factor >= 1) {
        u.warmingSince = 0;
        this.warming--;
      }
    }
  }

  private refreshPanic(): void {
    if (!this.panic) return;
    let healthy = 0;
    for (const u of this.rotation) if (u.locallyHealthy) healthy++;
    this.state.panic = this.panic.update(this.rotation.length, healthy);
  }
}
