import type { Check as CheckRecord, Instance } from '../../catalog/model';
import { realScheduler, type Scheduler } from '../../clock';
import { isSwitchboardError } from '../../errors';
import type { Logger } from '../../log';
import { counter, histogram } from '../../metrics';
import type { CatalogView } from '../catalog-view';
import type { CatalogWriter } from '../catalog-writer';
import type { Election } from '../election/election';
import { type Check, type CheckResult, errorText } from './check';
import { HttpCheck } from './http-check';
import { ScriptCheck } from './script-check';
import { TcpCheck } from './tcp-check';

export type RunnableCheckType = 'http' | 'tcp' | 'script';

export interface CheckRunnerOptions {
  view: Pick<CatalogView, 'instances' | 'instance' | 'onChange'>;
  writer: Pick<CatalogWriter, 'recordCheckResult'>;
  election: Election;
  logger: Logger;
  /** Injected so unit tests drive a fake clock. */
  clock?: Scheduler;
  /** Uniform in [0, 1); drives the start offsets and the per-run jitter. */
  random?: () => number;
  /** Checks in flight at once; the rest wait in a FIFO queue. */
  maxConcurrent?: number;
  /** One implementation per check type (tests substitute fakes). */
  checks?: Partial<Record<RunnableCheckType, Check>>;
}

/** One HTTP/TCP check the runner follows. */
interface Scheduled {
  checkId: string;
  instanceId: string;
  type: RunnableCheckType;
  /** The definition it was scheduled for; a different one is a new Scheduled. */
  fingerprint: string;
  record: CheckRecord;
  cancelTimer?: () => void;
  queued: boolean;
  inFlight?: AbortController;
  cancelled: boolean;
}

const DEFAULT_MAX_CONCURRENT = 32;
/** Each run lands within ±10% of the Interval after the previous one. */
const JITTER = 0.1;
/** A floor so a tiny Interval can't turn into a busy loop. */
const MIN_INTERVAL_MS = 10;


const checksTotal = counter('switchboard_registry_checks_total', 'Registry-side check runs by type and result', ['type', 'status']);
const checkDuration = histogram('switchboard_registry_check_duration_seconds', 'Time one registry-side check run took', ['type']);

/**
 * Leader-only: runs every HTTP, TCP and script check in the catalog at its Interval. Start times are
 * spread (a random first offset per check, ±10% jitter per run) and at most `maxConcurrent`
 * run at once, so a thousand instances registered together never get probed in one burst.
 * Results reach the store only on edges (a status change, or a check's very first output):
 * every write bumps the catalog revision and wakes every proxy, so a steady state writes
 * nothing. Status changes then travel the normal path: store → view → publisher → proxies.
 *
 * A result write refused by the election's fence (`not_leader`) means another process leads
 * even if our election has not noticed yet: every check stops until the next leadership edge.
 */
export class CheckRunner {
  private readonly log: Logger;
  private readonly clock: Scheduler;
  private readonly random: () => number;
  private readonly maxConcurrent: number;
  private readonly checks: Record<RunnableCheckType, Check>;
  private readonly scheduled = new Map<string, Scheduled>();
  /** Check IDs scheduled per instance, so a change to one instance touches only its checks. */
  private readonly byInstance = new Map<string, Set<string>>();
  private readonly running = new Set<Promise<void>>();
  private readonly unsubscribe: (() => void)[] = [];
  private queue: Scheduled[] = [];
  private stopped = true;
  /** A write was fenced off: run nothing until the election's next edge. */
  private fenced = false;
  /** Counts leadership edges, so a run fenced off in an earlier term doesn't stop this one. */
  private term = 0;

  constructor(private readonly options: CheckRunnerOptions) {
    this.log = options.logger.child({ component: 'check-runner' });
    this.clock = options.clock ?? realScheduler;
    this.random = options.random ?? Math.random;
    this.maxConcurrent = Math.max(1, options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT);
    this.checks = { http: new HttpCheck(), tcp: new TcpCheck(), script: new ScriptCheck({ maxConcurrent: 4 }), ...options.checks };
  }

  start(): void {
    this.stopped = false;
    this.unsubscribe.push(this.options.view.onChange((_change, instanceIds) => (instanceIds ? this.syncInstances(instanceIds) : this.sync())));
    this.unsubscribe.push(this.options.election.onChange((leading) => this.onLeadershipEdge(leading)));
    this.sync();
  }

  /** Clears every timer, aborts runs in flight and waits for them to settle. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const off of this.unsubscribe.splice(0)) off();
    this.cancelAll();
    await Promise.allSettled([...this.running]);
  }

  /** Checks being followed (tests). */
  get size(): number {
    return this.scheduled.size;
  }

  /** Runs in flight right now (tests). */
  get inFlight(): number {
    return this.running.size;
  }

  private onLeadershipEdge(leading: boolean): void {
    this.term++;
    this.fenced = false;
    if (leading) this.sync();
    else this.cancelAll();
  }

  /**
   * Brings the whole schedule in line with the view: new checks start, gone or changed ones
   * stop. O(catalog): only on start, on gaining leadership, and after the view re-read the
   * catalog; ordinary changes go through syncInstances.
   */
  private sync(): void {
    if (this.stopped) return;
    if (this.fenced || !this.options.election.isLeader()) return this.cancelAll();
    const wanted = runnableChecks(this.options.view.instances());
    for (const entry of [...this.scheduled.values()]) if (!wanted.has(entry.checkId)) this.unschedule(entry);
    for (const [checkId, want] of wanted) this.reconcile(checkId, want);
  }

  /** The same for the instances one change named: O(their checks), whatever the catalog's size. */
  private syncInstances(instanceIds: readonly string[]): void {
    if (this.stopped || this.fenced || !this.options.election.isLeader()) return;
    for (const instanceId of instanceIds) {
      const instance = this.options.view.instance(instanceId);
      const wanted = runnableChecks(instance ? [instance] : []);
      for (const checkId of [...(this.byInstance.get(instanceId) ?? [])]) {
        const entry = this.scheduled.get(checkId);
        if (entry && !wanted.has(checkId)) this.unschedule(entry);
      }
      for (const [checkId, want] of wanted) this.reconcile(checkId, want);
    }
  }

  /** Keeps the check's schedule when its definition is unchanged; otherwise starts it anew. */
  private reconcile(checkId: string, want: { instance: Instance; check: CheckRecord }): void {
    const entry = this.scheduled.get(checkId);
    if (entry && (want.check === entry.record || fingerprint(want.instance, want.check) === entry.fingerprint)) {
      entry.record = want.check;
      return;
    }
    if (entry) this.unschedule(entry);
    this.schedule(want.instance, want.check);
  }

  private schedule(instance: Instance, check: CheckRecord): void {
    const entry: Scheduled = {
      checkId: check.checkId,
      instanceId: instance.id,
      type: check.type as RunnableCheckType,
      fingerprint: fingerprint(instance, check),
      record: check,
      queued: false,
      cancelled: false,
    };
    this.scheduled.set(entry.checkId, entry);
    let ids = this.byInstance.get(instance.id);
    if (!ids) this.byInstance.set(instance.id, (ids = new Set()));
    ids.add(entry.checkId);
    this.arm(entry, this.random() * intervalOf(check));
  }

  private unschedule(entry: Scheduled): void {
    this.cancel(entry);
    if (this.scheduled.get(entry.checkId) === entry) this.scheduled.delete(entry.checkId);
    const ids = this.byInstance.get(entry.instanceId);
    ids?.delete(entry.checkId);
    if (ids?.size === 0) this.byInstance.delete(entry.instanceId);
  }

  private arm(entry: Scheduled, delayMs: number): void {
    entry.cancelTimer = this.clock.schedule(delayMs, () => this.fire(entry));
  }

  /** Due: plan the next run first (the cadence doesn't drift with run time), then run. */
  private fire(entry: Scheduled): void {
    entry.cancelTimer = undefined;
    if (entry.cancelled) return;
    const interval = intervalOf(entry.record);
    // A script may never run more often than its Interval: its jitter only ever delays it.
    const low = entry.type === 'script' ? 1 : 1 - JITTER;
    this.arm(entry, interval * (low + (1 + JITTER - low) * this.random()));
    // Still running or waiting from the last round: skip this one rather than pile up.
    if (entry.queued || entry.inFlight) return;
    if (this.running.size < this.maxConcurrent) return this.launch(entry);
    entry.queued = true;
    this.queue.push(entry);
  }

  private launch(entry: Scheduled): void {
    const controller = new AbortController();
    entry.inFlight = controller;
    const run = this.runOnce(entry, controller.signal).finally(() => {
      if (entry.inFlight === controller) entry.inFlight = undefined;
      this.running.delete(run);
      this.drain();
    });
    this.running.add(run);
  }

  private drain(): void {
    while (this.running.size < this.maxConcurrent && this.queue.length > 0) {
      const next = this.queue.shift() as Scheduled;
      next.queued = false;
      if (!next.cancelled) this.launch(next);
    }
  }

  private async runOnce(entry: Scheduled, signal: AbortSignal): Promise<void> {
    const started = process.hrtime.bigint();
    const term = this.term;
    const result = await this.probe(entry, signal);
    checkDuration.observe({ type: entry.type }, Number(process.hrtime.bigint() - started) / 1e9);
    if (signal.aborted || entry.cancelled || this.stopped || this.fenced || !this.options.election.isLeader()) return;
    checksTotal.inc({ type: entry.type, status: result.status });
    await this.record(entry, result, term);
  }

  private async probe(entry: Scheduled, signal: AbortSignal): Promise<CheckResult> {
    try {
      return await this.checks[entry.type].run(entry.record, signal);
    } catch (err) {
      return { status: 'critical', output: errorText(err) };
    }
  }

  /**
   * Compares with the catalog as the view has it now. A failed write is only logged: the
   * next run finds the same difference and writes again.
   */
  private async record(entry: Scheduled, result: CheckResult, term: number): Promise<void> {
    const current = this.options.view.instance(entry.instanceId)?.checks.find((c) => c.checkId === entry.checkId);
    if (!current || !isEdge(current, result)) return;
    const context = { checkId: entry.checkId, instanceId: entry.instanceId, from: current.status, to: result.status };
    try {
      const rev = await this.options.writer.recordCheckResult(entry.instanceId, entry.checkId, result.status, result.output);
      if (rev !== undefined && current.status !== result.status) this.log.info({ ...context, rev, output: result.output }, 'check status changed');
    } catch (err) {
      if (isSwitchboardError(err, 'not_leader')) return this.onFencedOut(term);
      this.log.warn({ ...context, err }, 'writing check result failed; the next run retries');
    }
  }

  /** Stops every check, unless leadership changed while the write was in flight. */
  private onFencedOut(term: number): void {
    if (term !== this.term || this.fenced) return;
    this.fenced = true;
    this.log.warn('check result write fenced off: another registry leads; stopping checks until the election changes');
    this.cancelAll();
  }

  private cancel(entry: Scheduled): void {
    entry.cancelled = true;
    entry.cancelTimer?.();
    entry.cancelTimer = undefined;
    entry.inFlight?.abort(new Error('check cancelled'));
  }

  private cancelAll(): void {
    for (const entry of this.scheduled.values()) this.cancel(entry);
    this.scheduled.clear();
    this.byInstance.clear();
    this.queue = [];
  }
}

/** Every HTTP/TCP/script check in the catalog with something to run, by check ID. */
function runnableChecks(instances: Iterable<Instance>): Map<string, { instance: Instance; check: CheckRecord }> {
  const out = new Map<string, { instance: Instance; check: CheckRecord }>();
  for (const instance of instances) {
    for (const check of instance.checks) {
      const runnable = (check.type === 'http' && check.http) || (check.type === 'tcp' && check.tcp) || (check.type === 'script' && (check.args?.length ?? 0) > 0);
      if (runnable && check.intervalMs !== undefined) out.set(check.checkId, { instance, check });
    }
  }
  return out;
}

/** What a run depends on; status and output are results, not definition. */
function fingerprint(instance: Instance, check: CheckRecord): string {
  const { type, http, method, header, tcp, args, intervalMs, timeoutMs } = check;
  return JSON.stringify([instance.id, type, http, method, header, tcp, args, intervalMs, timeoutMs]);
}

function intervalOf(check: CheckRecord): number {
  return Math.max(MIN_INTERVAL_MS, check.intervalMs ?? 0);
}

/**
 * Worth a store write: the status changed, or the check has no output yet (its first result
 * may confirm the initial critical, and an operator wants to see why). Output-only changes
 * are not written: a body with a timestamp would otherwise rewrite the catalog every run.
 */
function isEdge(current: CheckRecord, result: CheckResult): boolean {
  return current.status !== result.status || (current.output === '' && result.output !== '');
}
