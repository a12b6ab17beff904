import http from 'node:http';
import { effectiveWeight, type Instance } from '../catalog/model';
import { createBalancer, type Balancer, type PickRequest } from './balancers/balancer';

export interface UpstreamOptions {
  /** Idle keep-alive sockets to an instance are closed after this. */
  idleMs: number;
}

/**
 * One instance as the data plane sees it: where it is, how much traffic it should get, how
 * many requests it is serving, and the keep-alive agent that holds its connections.
 * Balancers ask only `available()` and `weight`.
 */
export class Upstream {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  instance: Instance;
  /** Effective Consul weight for the instance's current health; 0 = no traffic. */
  weight: number;
  inFlight = 0;
  readonly agent: http.Agent;
  private leaving = false;

  constructor(instance: Instance, options: UpstreamOptions) {
    this.id = instance.id;
    this.address = instance.address;
    this.port = instance.port;
    this.instance = instance;
    this.weight = effectiveWeight(instance);
    // Without a keep-alive agent every proxied request opens (and closes) a connection.
    // `timeout` closes sockets that sit idle in the pool; lifo keeps few sockets hot.
    this.agent = new http.Agent({ keepAlive: true, timeout: options.idleMs, scheduling: 'lifo' });
  }

  available(): boolean {
    return this.weight > 0 && !this.leaving;
  }

  get draining(): boolean {
    return this.leaving;
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
    if (this.leaving && this.inFlight === 0) this.agent.destroy();
  }

  /** Leave rotation; in-flight requests finish, then the connections are closed. */
  drain(): void {
    if (this.leaving) return;
    this.leaving = true;
    if (this.inFlight === 0) this.agent.destroy();
  }

  /** Shutdown: close every connection now. */
  destroy(): void {
    this.leaving = true;
    this.agent.destroy();
  }
}

/**
 * The upstreams of one service that are in rotation: instances whose effective weight is
 * above 0. A critical instance leaves on the catalog update that reports it; an instance
 * that leaves drains rather than being cut.
 */
export class Pool {
  readonly service: string;
  private readonly balancer: Balancer;
  private rotation: Upstream[] = [];
  private instanceCount = 0;

  constructor(
    service: string,
    private readonly options: UpstreamOptions,
    balancer: Balancer = createBalancer(),
  ) {
    this.service = service;
    this.balancer = balancer;
  }

  /** The catalog lists at least one instance, whatever its health. */
  get exists(): boolean {
    return this.instanceCount > 0;
  }

  get upstreams(): readonly Upstream[] {
    return this.rotation;
  }

  update(instances: readonly Instance[]): void {
    this.instanceCount = instances.length;
    const current = new Map(this.rotation.map((u) => [u.id, u]));
    const next: Upstream[] = [];
    for (const instance of instances) {
      const weight = effectiveWeight(instance);
      if (weight <= 0) continue;
      let upstream = current.get(instance.id);
      if (upstream && upstream.sameEndpoint(instance)) {
        current.delete(instance.id);
        upstream.instance = instance;
        upstream.weight = weight;
      } else {
        upstream = new Upstream(instance, this.options);
      }
      next.push(upstream);
    }
    for (const gone of current.values()) gone.drain();
    this.rotation = next;
    this.balancer.update(next);
  }

  pick(request: PickRequest): Upstream | undefined {
    return this.rotation.length === 0 ? undefined : this.balancer.pick(this.rotation, request);
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
  }
}
