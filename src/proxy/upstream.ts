import { effectiveWeight, type Instance } from '../catalog/model';
import { InstanceLatency } from './health/instance-latency';
import { InstanceStats } from './instance-stats';
import { UpstreamConnections, originOf, type TransportOptions } from './forward/transport';

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
  /** Reached over HTTPS: registered with `Meta: { scheme: https }`. */
  readonly secure: boolean;
  instance: Instance;
  /** Consul weight for the instance's current health; 0 = no traffic. */
  baseWeight: number;
  /** What balancers use: `baseWeight` × `warmFactor` × `latencyFactor`. */
  weight: number;
  /** Slow start's share of the weight, (0, 1]. */
  warmFactor = 1;
  /** Latency-aware share of the weight, (0, 1]: below 1 while it is slower than its peers. */
  latencyFactor = 1;
  /** What its answers take lately (latency-aware weights, the latency outlier rule). */
  readonly latency = new InstanceLatency();
  /** Its traffic per report window (the web UI). */
  readonly stats = new InstanceStats();
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
    this.secure = isHttpsInstance(instance);
    this.instance = instance;
    this.baseWeight = effectiveWeight(instance);
    this.weight = this.baseWeight;
    this.pool = pool;
    this.transport = options;
  }

  /** Its keep-alive connections. */
  get connections(): UpstreamConnections {
    this.lazyConnections ??= new UpstreamConnections(originOf(this.address, this.port, this.secure), this.transport);
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

  /** After a change to `baseWeight` or either factor. */
  refreshWeight(): void {
    this.weight = this.baseWeight * this.warmFactor * this.latencyFactor;
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

  /** An address, port or scheme change is a different endpoint: it gets a new upstream. */
  sameEndpoint(instance: Instance): boolean {
    return instance.address === this.address && instance.port === this.port && isHttpsInstance(instance) === this.secure;
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

/** Consul's convention (Meta `scheme`, as fabio and Traefik's Consul catalog read it). */
export function isHttpsInstance(instance: Instance): boolean {
  return instance.meta.scheme === 'https';
}
