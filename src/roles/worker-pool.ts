import cluster, { type Worker } from 'node:cluster';
import path from 'node:path';
import type { SwitchboardConfig } from '../config/types';
import { SwitchboardError } from '../errors';
import type { Logger } from '../log';
import { isFromWorker, type AskWhat, type FromWorker, type ReloadReport, type ToWorker } from './worker-protocol';

/**
 * The primary's side of `switchboard proxy --workers N`: forks the workers
 * (src/roles/proxy-worker.ts), knows what state each is in, restarts a worker that dies
 * (with a growing delay if it keeps dying young), asks them questions, and stops them.
 *
 * Connections are spread by node:cluster's round-robin scheduling: the primary accepts on
 * the proxy port and hands each connection to the next worker. Set explicitly because the
 * alternative (every worker accepting on the shared socket, SCHED_NONE) leaves the choice to
 * the kernel's wake-ups, which on Linux pile connections onto one or two busy workers; and
 * Node 20 has no SO_REUSEPORT for net servers. The hand-off costs the primary one IPC
 * message per connection, not per request: clients of a proxy keep connections alive.
 */

export type WorkerState = 'starting' | 'listening' | 'ready' | 'down' | 'stopping';

/** One worker as GET /workers shows it (src/roles/proxy-primary.ts adds what the worker says). */
export interface WorkerInfo {
  /** Slot number, 0..N-1; a restarted worker keeps its slot. */
  worker: number;
  pid?: number;
  /** starting → listening (serving, first sync pending) → ready; down while a restart waits. */
  state: WorkerState;
  restarts: number;
}

interface Slot {
  readonly index: number;
  worker?: Worker;
  state: WorkerState;
  restarts: number;
  /** Deaths in a row, each soon after its start: the restart delay doubles with them. */
  failures: number;
  startedAt: number;
  restartTimer?: NodeJS.Timeout;
}

interface PendingAsk {
  workerId: number;
  settle(value: unknown): void;
}

const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 10_000;
/** A worker that lived this long died of something new: restart it after the base delay again. */
const STABLE_AFTER_MS = 10_000;

export class WorkerPool {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, PendingAsk>();
  private readonly exitListeners: Array<(workerId: number) => void> = [];
  private nextAskId = 0;
  private stopping: Promise<void> | undefined;

  constructor(
    private config: Readonly<SwitchboardConfig>,
    private readonly logger: Logger,
    count: number,
  ) {
    this.slots = Array.from({ length: count }, (_, index) => ({ index, state: 'down', restarts: 0, failures: 0, startedAt: 0 }));
  }

  /** Forks every worker; resolves with the proxy address once all listen, rejects if one cannot. */
  async start(): Promise<string> {
    configureCluster();
    try {
      const sockets = this.config.proxy.workerSockets;
      if (sockets === 'reuseport' || (sockets === 'auto' && reusePortSupported())) {
        if (!reusePortSupported()) throw reusePortUnsupported();
        this.config = { ...this.config, proxy: { ...this.config.proxy, workerSockets: 'reuseport' } };
        // Each worker binds the port itself: the first one resolves a port 0, the rest (and
        // replacements) bind the port it got.
        const first = await this.fork(this.slots[0], false);
        this.config = { ...this.config, proxy: { ...this.config.proxy, listen: first } };
        await Promise.all(this.slots.slice(1).map((slot) => this.fork(slot, false)));
        return first;
      }
      const addresses = await Promise.all(this.slots.map((slot) => this.fork(slot, false)));
      return addresses[0];
    } catch (err) {
      await this.stop(0).catch(() => undefined);
      throw err;
    }
  }

  /** Serving (at least one worker listens) and every serving worker has its catalog. */
  ready(): boolean {
    const serving = this.slots.filter((s) => s.state === 'listening' || s.state === 'ready');
    return serving.length > 0 && serving.every((s) => s.state === 'ready');
  }

  describe(): WorkerInfo[] {
    return this.slots.map((s) => {
      const pid = s.worker?.process.pid;
      return { worker: s.index, ...(pid === undefined ? {} : { pid }), state: s.state, restarts: s.restarts };
    });
  }

  /** Called with the cluster id of every worker that exits (ClusterMetrics keeps its totals). */
  onWorkerExit(listener: (workerId: number) => void): void {
    this.exitListeners.push(listener);
  }

  /** Every connected worker's answer by cluster worker id; undefined for one that did not answer in time. */
  async askAll(what: AskWhat, timeoutMs: number): Promise<Map<number, unknown>> {
    const workers = this.slots.flatMap((s) => (s.worker?.isConnected() ? [s.worker] : []));
    const answers = await Promise.all(workers.map((w) => this.ask(w, what, timeoutMs)));
    return new Map(workers.map((w, i) => [w.id, answers[i]]));
  }

  /** By slot, for callers that show workers (GET /workers). */
  slotOf(workerId: number): number | undefined {
    return this.slots.find((s) => s.worker?.id === workerId)?.index;
  }

  /**
   * Tells every worker to drain and waits for it to exit; after `graceMs` the rest are
   * killed. Rejects if a worker had to be killed or exited with an error.
   */
  stop(graceMs: number): Promise<void> {
    this.stopping ??= this.stopAll(graceMs);
    return this.stopping;
  }

  private async stopAll(graceMs: number): Promise<void> {
    const live: Array<{ slot: Slot; worker: Worker }> = [];
    for (const slot of this.slots) {
      clearTimeout(slot.restartTimer);
      if (!slot.worker) continue;
      slot.state = 'stopping';
      live.push({ slot, worker: slot.worker });
      send(slot.worker, { sb: 'stop' });
    }
    const exits = await Promise.all(live.map(({ worker }) => exitOf(worker, graceMs)));
    const unclean = exits.map((e, i) => ({ ...e, worker: live[i].slot.index })).filter((e) => e.killed || e.code !== 0);
    if (unclean.length > 0) {
      const list = unclean.map((e) => `worker ${e.worker}: ${e.killed ? 'killed after the drain deadline' : describeExit(e.code, e.signal)}`);
      throw new Error(`proxy workers did not stop cleanly (${list.join('; ')})`);
    }
  }

  private fork(slot: Slot, replacement: boolean): Promise<string> {
    const worker = cluster.fork();
    slot.worker = worker;
    slot.state = 'starting';
    slot.startedAt = Date.now();
    worker.on('error', (err) => this.logger.warn({ err, worker: slot.index }, 'proxy worker IPC error'));
    const listening = new Promise<string>((resolve, reject) => {
      worker.on('message', (message: unknown) => {
        if (!isFromWorker(message)) return;
        if (message.sb === 'listening') {
          slot.state = 'listening';
          resolve(message.address);
        } else if (message.sb === 'failed') {
          reject(message.code === undefined ? new Error(message.message) : new SwitchboardError(message.code, message.message));
        } else this.onMessage(slot, message);
      });
      worker.once('exit', (code: number | null, signal: NodeJS.Signals | null) => {
        reject(new Error(`proxy worker ${slot.index} exited while starting (${describeExit(code, signal)})`));
        this.onExit(slot, worker, code, signal);
      });
    });
    // A replacement joins the port only once it has a catalog. It listens on the configured
    // address as given: node:cluster shares one socket per address *as written* (port 0
    // included), so the bound port would be a second socket, refused as in use.
    send(worker, { sb: 'start', worker: slot.index, config: this.config, listenAfterSync: replacement });
    return listening;
  }

  private onMessage(slot: Slot, message: FromWorker): void {
    if (message.sb === 'ready' && slot.state === 'listening') slot.state = 'ready';
    else if (message.sb === 'answer') {
      if (message.error !== undefined) this.logger.warn({ worker: slot.index, error: message.error }, 'proxy worker could not answer');
      this.pending.get(message.id)?.settle(message.error === undefined ? message.value : undefined);
    }
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    for (const ask of [...this.pending.values()]) if (ask.workerId === worker.id) ask.settle(undefined);
    for (const listener of this.exitListeners) listener(worker.id);
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.state = 'down';
    if (this.stopping === undefined) this.scheduleRestart(slot, worker.process.pid, code, signal);
  }

  private scheduleRestart(slot: Slot, pid: number | undefined, code: number | null, signal: NodeJS.Signals | null): void {
    if (Date.now() - slot.startedAt >= STABLE_AFTER_MS) slot.failures = 0;
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** Math.min(slot.failures, 20));
    slot.failures++;
    this.logger.error({ worker: slot.index, workerPid: pid, code, signal, restartInMs: delay }, 'proxy worker died: restarting it');
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      slot.restarts++;
      this.fork(slot, true).then(
        (address) => this.logger.info({ worker: slot.index, workerPid: slot.worker?.process.pid, address }, 'proxy worker restarted'),
        () => undefined, // its exit schedules the next try
      );
    }, delay);
  }

  /**
   * A reloaded configuration: every worker applies it (and a worker started later gets it).
   * What cannot change live (the port and how it is shared) stays as the pool resolved it.
   */
  async reload(next: Readonly<SwitchboardConfig>, timeoutMs: number): Promise<ReloadReport> {
    const { listen, workerSockets } = this.config.proxy;
    this.config = { ...next, proxy: { ...next.proxy, listen, workerSockets } };
    const workers = this.slots.map((s) => s.worker).filter((w): w is Worker => w !== undefined && w.isConnected());
    const answers = await Promise.all(workers.map((w) => this.request(w, (id) => ({ sb: 'reload', id, config: this.config }), timeoutMs)));
    const report: ReloadReport = { applied: [], restartRequired: [] };
    for (const answer of answers) {
      const r = answer as ReloadReport | undefined;
      if (r === undefined) continue;
      for (const a of r.applied) if (!report.applied.includes(a)) report.applied.push(a);
      for (const a of r.restartRequired) if (!report.restartRequired.includes(a)) report.restartRequired.push(a);
      for (const f of r.failed ?? []) if (!(report.failed ??= []).includes(f)) report.failed.push(f);
    }
    if (next.proxy.listen !== listen && !report.restartRequired.includes('proxy.listen')) report.restartRequired.push('proxy.listen');
    return report;
  }

  private ask(worker: Worker, what: AskWhat, timeoutMs: number): Promise<unknown> {
    return this.request(worker, (id) => ({ sb: 'ask', id, what }), timeoutMs);
  }

  /** Sends a message with a fresh id; resolves with the worker's answer (undefined on timeout). */
  private request(worker: Worker, message: (id: number) => ToWorker, timeoutMs: number): Promise<unknown> {
    const id = this.nextAskId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(undefined), timeoutMs);
      const settle = (value: unknown): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(value);
      };
      this.pending.set(id, { workerId: worker.id, settle });
      send(worker, message(id));
    });
  }
}

let clusterConfigured = false;

/** Once per process, before the first fork (node:cluster reads these then). */
function configureCluster(): void {
  if (clusterConfigured) return;
  clusterConfigured = true;
  cluster.schedulingPolicy = cluster.SCHED_RR;
  // 'advanced': metric values such as NaN and +Inf survive the trip.
  cluster.setupPrimary({ exec: path.join(__dirname, 'proxy-worker.js'), args: [], serialization: 'advanced' });
}

function send(worker: Worker, message: ToWorker): void {
  if (!worker.isConnected()) return;
  // With a callback, a channel closing under us is reported there rather than as an 'error'.
  worker.send(message, undefined, () => undefined);
}

interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  killed: boolean;
}

function exitOf(worker: Worker, graceMs: number): Promise<WorkerExit> {
  const { exitCode, signalCode } = worker.process;
  if (exitCode !== null || signalCode !== null) return Promise.resolve({ code: exitCode, signal: signalCode as NodeJS.Signals | null, killed: false });
  return new Promise((resolve) => {
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      worker.process.kill('SIGKILL');
    }, graceMs);
    worker.process.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, killed });
    });
  });
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal === null ? `exit code ${code}` : `signal ${signal}`;
}

/** SO_REUSEPORT listeners arrived in Node 22.12 (and 23.1). */
function reusePortSupported(): boolean {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 12);
}

function reusePortUnsupported(): SwitchboardError {
  return new SwitchboardError('config_invalid', `proxy.workerSockets "reuseport" needs Node 22.12 or newer (this is ${process.version}); use "shared" or "auto"`, { field: 'proxy.workerSockets' });
}
