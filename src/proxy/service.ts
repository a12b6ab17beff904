import type { Instance } from '../catalog/model';
import type { ServicePolicy } from '../config/types';
import type { Logger } from '../log';
import { createBalancer, type PickRequest } from './balancers/balancer';
import { ActiveProber } from './health/active-prober';
import { OutlierDetector } from './health/outlier-detector';
import { PanicMode } from './health/panic';
import { LatencyTracker } from './health/latency';
import { PassiveHealth } from './health/passive';
import { ConcurrencyLimiter } from './overload';
import type { TransportOptions } from './forward/transport';
import { RetryBudget } from './retry-budget';
import { RetryPolicy } from './retry-policy';
import { realScheduler, type Scheduler } from '../clock';
import { Pool } from './pool';
import type { Upstream } from './upstream';
import type { InstanceReport, ServiceReport } from '../bus/proxy-report';

export interface ServiceOptions {
  /** How connections to its upstreams behave. */
  transport: TransportOptions;
  logger: Logger;
  scheduler?: Scheduler;
  /** Told when outlier detection ejects an instance (notifications). */
  onEjected?: (service: string, instance: Instance, reason: string) => void;
}

/** One upstream as /debug or a test sees it. */
export interface UpstreamState {
  id: string;
  address: string;
  port: number;
  available: boolean;
  ejected: boolean;
  probeFailing: boolean;
  inFlight: number;
  weight: number;
  /** Its recent latency average; undefined before its first answer. */
  latencyMs: number | undefined;
}

/**
 * Everything the proxy keeps for one service, built from its policy: the pool and balancer,
 * the health verdicts that feed `available()` (outlier detection, active probes, panic), the
 * concurrency limiter and the retry policy with its budget. Health changes reach the pool
 * only as edges (ejected / returned, probe down / up).
 */
export class Service {
  readonly name: string;
  readonly policy: Readonly<ServicePolicy>;
  readonly limiter: ConcurrencyLimiter;
  readonly retry: RetryPolicy;
  readonly passive: PassiveHealth;
  /** What its successful attempts take: the adaptive per-try timeout. */
  readonly latency: LatencyTracker;
  private readonly pool: Pool;
  private readonly detector: OutlierDetector;
  private readonly prober: ActiveProber | undefined;
  private readonly panic: PanicMode;
  private readonly logger: Logger;

  private readonly scheduler: Scheduler;

  constructor(name: string, policy: Readonly<ServicePolicy>, private readonly options: ServiceOptions) {
    const scheduler = options.scheduler ?? realScheduler;
    this.scheduler = scheduler;
    this.name = name;
    this.policy = policy;
    this.logger = options.logger;
    this.panic = new PanicMode(name, policy.panicThreshold, options.logger);
    this.pool = new Pool(
      name,
      {
        ...options.transport,
        slowStart: policy.slowStart,
        latencyAware: policy.latencyAware,
        slowFactor: policy.outlierDetection.slowFactor,
        onSlow: (id) => this.detector.slow(id),
        panic: this.panic,
        now: () => scheduler.now(),
      },
      createBalancer(policy.balancer, { hashKey: policy.hashKey }),
    );
    this.detector = new OutlierDetector({
      service: name,
      config: policy.outlierDetection,
      onChange: (id, ejected, reason) => {
        this.pool.setEjected(id, ejected);
        const instance = ejected ? this.pool.upstreams.find((u) => u.id === id)?.instance : undefined;
        if (instance) options.onEjected?.(name, instance, reason ?? 'unknown');
      },
      scheduler,
      logger: options.logger,
    });
    this.passive = new PassiveHealth(this.detector);
    this.latency = new LatencyTracker(name, policy.retries.adaptiveTimeout, () => scheduler.now());
    this.prober = policy.healthCheck.enabled ? this.createProber(scheduler) : undefined;
    this.limiter = new ConcurrencyLimiter({ service: name, config: policy.limits, scheduler });
    const budget = new RetryBudget(name, policy.retries);
    this.retry = new RetryPolicy(name, policy.retries, budget);
  }

  /** The catalog lists at least one instance, whatever its health. */
  get exists(): boolean {
    return this.pool.exists;
  }

  get inPanic(): boolean {
    return this.pool.inPanic;
  }

  get budget(): RetryBudget {
    return this.retry.budget;
  }

  pick(request: PickRequest, exclude?: readonly Upstream[]): Upstream | undefined {
    return this.pool.pick(request, exclude);
  }

  /**
   * A try got its answer after `ms` (`healthy`: below 500), or was given up as hung: the
   * upstream's latency average hears both, the service's learned timeout only healthy answers.
   */
  observeLatency(upstream: Upstream, ms: number, healthy: boolean): void {
    if (healthy) this.latency.record(ms);
    this.pool.observeLatency(upstream, ms);
  }

  /** The service's instances changed in the catalog. */
  update(instances: readonly Instance[]): void {
    const replaced = this.pool.update(instances);
    const upstreams = this.pool.upstreams;
    const ids = upstreams.map((u) => u.id);
    // A new endpoint under an old id starts with a clean record.
    if (replaced.length > 0) this.detector.setHosts(ids.filter((id) => !replaced.includes(id)));
    this.detector.setHosts(ids);
    const tls = this.options.transport.tls ?? {};
    this.prober?.setTargets(upstreams.map((u) => ({ id: u.id, host: u.address, port: u.port, ...(u.secure ? { tls } : {}) })));
    // Upstream objects made by this update start healthy; tell them what is known of their ids.
    this.pool.syncHealth(
      (id) => this.detector.isEjected(id),
      (id) => this.prober?.isHealthy(id) ?? true,
    );
  }

  /**
   * This service's part of the proxy's report (bus/proxy-report.ts), closing every
   * instance's traffic window of `elapsedMs`; undefined when nothing is worth telling.
   */
  report(elapsedMs: number): ServiceReport | undefined {
    const now = this.scheduler.now();
    const instances: Record<string, InstanceReport> = {};
    let any = false;
    for (const u of this.pool.upstreams) {
      const window = u.stats.take(elapsedMs);
      const ejection = this.detector.ejection(u.id);
      if (window === undefined && u.inFlight === 0 && ejection === undefined && !u.probeFailing && u.warmFactor >= 1 && u.latencyFactor >= 1) continue;
      any = true;
      instances[u.id] = {
        ...window,
        inFlight: u.inFlight,
        weight: u.weight,
        baseWeight: u.baseWeight,
        ...(u.warmFactor < 1 ? { warm: u.warmFactor } : {}),
        ...(u.latencyFactor < 1 ? { latencyFactor: u.latencyFactor } : {}),
        ...(ejection !== undefined ? { ejected: { reason: ejection.reason, remainingMs: Math.max(0, ejection.until - now) } } : {}),
        ...(u.probeFailing ? { probeFailing: true } : {}),
      };
    }
    return any || this.inPanic ? { panic: this.inPanic, instances } : undefined;
  }

  states(): UpstreamState[] {
    return this.pool.upstreams.map((u) => ({
      id: u.id,
      address: u.address,
      port: u.port,
      available: u.available(),
      ejected: u.ejected,
      probeFailing: u.probeFailing,
      inFlight: u.inFlight,
      weight: u.weight,
      latencyMs: u.latency.estimate,
    }));
  }

  /** The service left the catalog: in-flight requests finish, timers and probes stop. */
  retire(): Promise<void> {
    this.pool.drain();
    return this.stopHealth();
  }

  /** Shutdown: close every upstream connection now. */
  destroy(): Promise<void> {
    this.pool.destroy();
    return this.stopHealth();
  }

  private async stopHealth(): Promise<void> {
    this.detector.stop();
    this.latency.dispose();
    this.limiter.close();
    this.panic.dispose();
    await this.prober?.stop();
  }

  private createProber(scheduler: Scheduler): ActiveProber {
    return new ActiveProber({
      service: this.name,
      config: this.policy.healthCheck,
      onChange: (id, healthy) => this.probeChanged(id, healthy),
      scheduler,
    });
  }

  private probeChanged(id: string, healthy: boolean): void {
    if (healthy) this.logger.info({ service: this.name, instance: id }, 'active probes pass again: instance back in rotation');
    else this.logger.warn({ service: this.name, instance: id }, 'active probes failing: instance out of rotation');
    this.pool.setProbeHealthy(id, healthy);
  }
}
