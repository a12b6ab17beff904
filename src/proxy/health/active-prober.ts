import http from 'node:http';
import https from 'node:https';
import type { ConnectionOptions } from 'node:tls';
import type { ServicePolicy } from '../../config/types';
import { counter } from '../../metrics';
import { realScheduler, type Scheduler } from '../../clock';

/** One endpoint to probe. A changed host or port under the same id is a new target. */
export interface ProbeTarget {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** TLS options for an instance reached over HTTPS; undefined = plain HTTP. */
  readonly tls?: ConnectionOptions;
}

/**
 * The service's `healthCheck` policy (src/config/schema.ts has the defaults: HAProxy's
 * `rise 2 fall 3`, 2xx/3xx = up, and 10 % jitter so that a proxy's probes never line up).
 * Each interval gets up to `jitter` plus up to `jitterPercent` % of the interval added.
 */
export type ActiveProbeConfig = Omit<ServicePolicy['healthCheck'], 'enabled'>;

/** What one probe saw: a status, or the error code of a failure to get one. */
export interface ProbeOutcome {
  status?: number;
  error?: string;
}

/** Performs one probe; must settle soon after `signal` aborts. */
export type ProbeFn = (target: ProbeTarget, path: string, signal: AbortSignal) => Promise<ProbeOutcome>;

export interface ActiveProberOptions {
  service: string;
  config: Readonly<ActiveProbeConfig>;
  /** Called only when a target's state flips (edges), never for additions or removals. */
  onChange: (id: string, healthy: boolean) => void;
  scheduler?: Scheduler;
  /** [0, 1); injected so tests can pin the jitter. */
  random?: () => number;
  probe?: ProbeFn;
}

interface TargetState {
  readonly target: ProbeTarget;
  healthy: boolean;
  successes: number;
  failures: number;
  cancelTimer?: () => void;
  controller?: AbortController;
  disposed: boolean;
}

const probesTotal = counter('switchboard_proxy_health_probes_total', 'Active health probes by result.', ['service', 'result']);

/**
 * Active health checking for one service. Each target has its own timer; the first probe
 * lands at a random point of the first interval and the next one an interval (plus jitter)
 * after the previous probe settled, so probes spread out and never pile up.
 *
 * New targets start healthy: the registry has already vouched for them, and starting them
 * unhealthy (Envoy's choice, one success brings them in) would empty every pool while a
 * freshly started proxy waits for its first round of probes. A dead new target is caught by
 * `unhealthyThreshold` failed probes, and sooner by passive ejection.
 */
export class ActiveProber {
  readonly service: string;
  readonly config: Readonly<ActiveProbeConfig>;
  private readonly onChange: (id: string, healthy: boolean) => void;
  private readonly scheduler: Scheduler;
  private readonly random: () => number;
  private readonly probe: ProbeFn;
  private readonly targets = new Map<string, TargetState>();
  /** Due but waiting for a concurrency slot, oldest first. */
  private queue: TargetState[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;

  constructor(options: ActiveProberOptions) {
    this.service = options.service;
    this.config = options.config;
    this.onChange = options.onChange;
    this.scheduler = options.scheduler ?? realScheduler;
    this.random = options.random ?? Math.random;
    this.probe = options.probe ?? httpProbe;
  }

  /** Replace the set of targets; unchanged targets keep their state and schedule. */
  setTargets(targets: readonly ProbeTarget[]): void {
    if (this.stopped) return;
    const next = new Map(targets.map((t) => [t.id, t]));
    for (const [id, state] of this.targets) {
      if (!next.has(id)) this.remove(state);
    }
    for (const target of next.values()) {
      const existing = this.targets.get(target.id);
      if (existing && sameEndpoint(existing.target, target)) continue;
      const wasUnhealthy = existing !== undefined && !existing.healthy;
      if (existing) this.remove(existing);
      this.add(target);
      // The old endpoint's verdict does not carry over; tell the caller it is back in.
      if (wasUnhealthy) this.onChange(target.id, true);
    }
  }

  /** Unknown ids count as healthy: the prober only ever takes out what it has seen fail. */
  isHealthy(id: string): boolean {
    return this.targets.get(id)?.healthy ?? true;
  }

  /** Clears every timer and aborts in-flight probes; resolves once they have settled. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const state of this.targets.values()) this.remove(state);
    await Promise.allSettled([...this.inFlight]);
  }

  private add(target: ProbeTarget): void {
    const state: TargetState = { target, healthy: true, successes: 0, failures: 0, disposed: false };
    this.targets.set(target.id, state);
    this.schedule(state, this.random() * this.config.interval);
  }

  private remove(state: TargetState): void {
    state.disposed = true;
    state.cancelTimer?.();
    state.controller?.abort();
    this.targets.delete(state.target.id);
    this.queue = this.queue.filter((s) => s !== state);
  }

  private schedule(state: TargetState, delayMs: number): void {
    state.cancelTimer = this.scheduler.schedule(delayMs, () => {
      state.cancelTimer = undefined;
      this.queue.push(state);
      this.pump();
    });
  }

  private nextDelay(): number {
    const { interval, jitter, jitterPercent } = this.config;
    return interval + this.random() * jitter + (this.random() * jitterPercent * interval) / 100;
  }

  private pump(): void {
    while (this.inFlight.size < this.config.maxConcurrentProbes && this.queue.length > 0) {
      const state = this.queue.shift() as TargetState;
      const running = this.run(state);
      this.inFlight.add(running);
      const settled = (): void => {
        this.inFlight.delete(running);
        this.pump();
      };
      // A throwing onChange must not become an unhandled rejection nor stop the loop.
      running.then(settled, settled);
    }
  }

  private async run(state: TargetState): Promise<void> {
    const controller = new AbortController();
    state.controller = controller;
    const cancelTimeout = this.scheduler.schedule(this.config.timeout, () => controller.abort());
    let outcome: ProbeOutcome;
    try {
      outcome = await this.probe(state.target, this.config.path, controller.signal);
    } catch (err) {
      outcome = { error: (err as NodeJS.ErrnoException).code ?? 'probe_error' };
    } finally {
      cancelTimeout();
      state.controller = undefined;
    }
    // Removed or stopped while probing: the verdict belongs to nobody.
    if (state.disposed) return;
    this.schedule(state, this.nextDelay());
    this.record(state, this.passed(outcome));
  }

  private passed(outcome: ProbeOutcome): boolean {
    const { status } = outcome;
    if (status === undefined) return false;
    return this.config.expectedStatuses.some(([low, high]) => status >= low && status <= high);
  }

  private record(state: TargetState, success: boolean): void {
    probesTotal.inc({ service: this.service, result: success ? 'success' : 'failure' });
    if (success) {
      state.failures = 0;
      state.successes++;
      if (!state.healthy && state.successes >= this.config.healthyThreshold) this.flip(state, true);
    } else {
      state.successes = 0;
      state.failures++;
      if (state.healthy && state.failures >= this.config.unhealthyThreshold) this.flip(state, false);
    }
  }

  private flip(state: TargetState, healthy: boolean): void {
    state.healthy = healthy;
    this.onChange(state.target.id, healthy);
  }
}

function sameEndpoint(a: ProbeTarget, b: ProbeTarget): boolean {
  return a.host === b.host && a.port === b.port && a.tls === b.tls;
}

/**
 * One HTTP GET on a fresh connection (`agent: false`): a probe must test that the instance
 * still accepts connections, not reuse one it accepted long ago. Only the status matters, so
 * the body is never read.
 */
export function httpProbe(target: ProbeTarget, path: string, signal: AbortSignal): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const client = target.tls !== undefined ? https : http;
    const req = client.request({
      ...target.tls,
      host: target.host,
      port: target.port,
      path,
      method: 'GET',
      agent: false,
      signal,
      headers: { 'user-agent': 'switchboard-health-probe', connection: 'close' },
    });
    req.on('response', (res) => {
      res.on('error', () => undefined);
      resolve({ status: res.statusCode });
      res.destroy();
    });
    // `on`, not `once`: a second error after the first must not go unhandled.
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? 'probe_error' }));
    req.end();
  });
}

