import { isSwitchboardError } from '../../errors';
import type { Logger } from '../../log';
import type { CatalogView } from '../catalog-view';
import type { CatalogWriter } from '../catalog-writer';
import type { Election } from '../election/election';
import { MinHeap } from '../min-heap';
import { realScheduler, type Scheduler } from '../../clock';
import { dueAt, nextDeadline } from './deadlines';

export interface TtlExpiryOptions {
  view: Pick<CatalogView, 'instance' | 'instances' | 'ttlDeadline' | 'checkOwner' | 'onChange' | 'onDeadlines'>;
  writer: Pick<CatalogWriter, 'expireCheck' | 'reap'>;
  election: Election;
  logger: Logger;
  /** Wall clock (deadlines are wall-clock times in the store) and timers; a fake one in tests. */
  scheduler?: Scheduler;
}

/** One instance's earliest deadline; stale once `deadlines` holds another time for it. */
interface HeapEntry {
  at: number;
  instanceId: string;
}

type Write = { run: () => Promise<number | undefined>; context: object };
type PassOutcome = 'done' | 'idle' | 'failed' | 'fenced';

/** Longest single sleep; a far deadline is simply re-evaluated when it fires. */
const MAX_SLEEP_MS = 60_000;
const RETRY_AFTER_ERROR_MS = 1000;
/** After a pass, don't spin while our view still lags a heartbeat the writer already saw. */
const MIN_SLEEP_AFTER_RUN_MS = 20;

/**
 * Leader-only: turns lapsed TTL checks critical and deregisters instances that stayed
 * critical past DeregisterCriticalServiceAfter.
 *
 * Every catalog change costs O(changed instances × log n), never a scan of the catalog: each
 * instance's earliest deadline sits in a min-heap, recomputed only for the instances a change
 * names. Entries are invalidated lazily: `deadlines` holds each instance's current time, and
 * an entry that disagrees with it is skipped when it reaches the top. One timer is armed for
 * the earliest. Heartbeats only ever push deadlines later, so they leave the heap alone: the
 * old entry wakes us early, finds nothing due, and is replaced by the later time.
 *
 * A write refused by the election's fence (`not_leader`) means another process leads even
 * if our election has not noticed yet: the loop stops writing, without retrying, until the
 * next leadership edge.
 */
export class TtlExpiryLoop {
  private readonly log: Logger;
  private readonly scheduler: Scheduler;
  private readonly heap = new MinHeap<HeapEntry>((e) => e.at);
  private readonly deadlines = new Map<string, number>();
  private cancelTimer?: () => void;
  /** Scheduler time at which the armed timer fires. */
  private timerAt = Infinity;
  private running?: Promise<void>;
  private stopped = true;
  private idlePasses = 0;
  /** A write was fenced off: wait for the election's next edge before writing again. */
  private fenced = false;
  /** Counts leadership edges, so a pass fenced off in an earlier term doesn't pause this one. */
  private term = 0;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly options: TtlExpiryOptions) {
    this.log = options.logger.child({ component: 'ttl-expiry' });
    this.scheduler = options.scheduler ?? realScheduler;
  }

  start(): void {
    this.stopped = false;
    const { view, election } = this.options;
    this.unsubscribe.push(view.onChange((_change, instanceIds) => this.onInstances(instanceIds)));
    this.unsubscribe.push(view.onDeadlines((checkIds) => this.onDeadlinesMoved(checkIds)));
    this.unsubscribe.push(election.onChange(() => this.onLeadershipEdge()));
    this.rebuild();
    this.arm();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const off of this.unsubscribe.splice(0)) off();
    this.disarm();
    await this.running;
  }

  /** Instances with a deadline being tracked (tests). */
  get tracked(): number {
    return this.deadlines.size;
  }

  /** The earliest deadline the loop will wake for (tests). */
  get earliest(): number | undefined {
    return this.peekLive()?.at;
  }

  /** No pass running and no wake-up armed (tests). */
  get idle(): boolean {
    return this.running === undefined && this.cancelTimer === undefined;
  }

  private onLeadershipEdge(): void {
    this.term++;
    this.fenced = false;
    this.arm();
  }

  private onInstances(instanceIds: readonly string[] | undefined): void {
    if (instanceIds === undefined) this.rebuild();
    else for (const id of instanceIds) this.refresh(id);
    this.arm();
  }

  /**
   * A ttl/ key moved without a catalog change: a heartbeat (later, nothing to do) or, in
   * principle, an earlier deadline, which must not wait for the later entry.
   */
  private onDeadlinesMoved(checkIds: readonly string[] | undefined): void {
    if (checkIds === undefined) return this.onInstances(undefined);
    let earlier = false;
    for (const checkId of checkIds) {
      const owner = this.options.view.checkOwner(checkId);
      if (owner !== undefined) earlier = this.refresh(owner, true) || earlier;
    }
    if (earlier) this.arm();
  }

  /** The whole catalog, once: at start and when the view could not say what changed. */
  private rebuild(): void {
    this.heap.clear();
    this.deadlines.clear();
    for (const instance of this.options.view.instances()) this.refresh(instance.id);
  }

  /**
   * Recomputes one instance's earliest deadline from the view; true when it is new or moved.
   * `onlyEarlier` keeps a heartbeat from adding an entry per beat.
   */
  private refresh(instanceId: string, onlyEarlier = false): boolean {
    const instance = this.options.view.instance(instanceId);
    const at = instance && nextDeadline(instance, (checkId) => this.options.view.ttlDeadline(checkId));
    const current = this.deadlines.get(instanceId);
    if (at === undefined) {
      // Its heap entry, if any, is now stale and is dropped when it surfaces.
      this.deadlines.delete(instanceId);
      return false;
    }
    if (at === current || (onlyEarlier && current !== undefined && at > current)) return false;
    this.deadlines.set(instanceId, at);
    this.heap.push({ at, instanceId });
    return true;
  }

  /** The earliest live entry, dropping stale ones on the way. */
  private peekLive(): HeapEntry | undefined {
    for (let top = this.heap.peek(); top; top = this.heap.peek()) {
      if (this.deadlines.get(top.instanceId) === top.at) return top;
      this.heap.pop();
    }
    return undefined;
  }

  /** Sleep until the earliest deadline (or not at all when there is none or we don't lead). */
  private arm(minDelayMs = 0): void {
    // A pass in progress re-arms when it ends, with everything it changed in view.
    if (this.stopped || this.running || this.fenced || !this.options.election.isLeader()) return this.disarm();
    const next = this.peekLive();
    if (next === undefined) return this.disarm();
    const now = this.scheduler.now();
    const delay = Math.min(Math.max(minDelayMs, next.at - now), MAX_SLEEP_MS);
    // Already waking no later than needed: keep that timer; an early wake-up is harmless (it
    // re-arms). A wall-clock jump only makes a wake-up early or late by the jump, once.
    const fireAt = now + delay;
    if (this.cancelTimer && this.timerAt <= fireAt) return;
    this.disarm();
    this.timerAt = fireAt;
    this.cancelTimer = this.scheduler.schedule(delay, () => {
      this.cancelTimer = undefined;
      this.runOnce();
    });
  }

  private disarm(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.timerAt = Infinity;
  }

  private runOnce(): void {
    this.disarm();
    const term = this.term;
    this.running = this.applyDue().then(
      (outcome) => this.afterRun(outcome, term),
      (err: unknown) => {
        this.log.error({ err }, 'TTL expiry pass failed');
        this.afterRun('failed', term);
      },
    );
  }

  /**
   * 'idle' means the view said something was due but the store (read fresh by the writer)
   * disagreed: our view lags a heartbeat. Back off until it catches up rather than spin.
   */
  private afterRun(outcome: PassOutcome, term: number): void {
    this.running = undefined;
    if (outcome === 'fenced' && term === this.term) this.onFencedOut();
    this.idlePasses = outcome === 'idle' ? this.idlePasses + 1 : 0;
    const idleDelay = Math.min(MIN_SLEEP_AFTER_RUN_MS * 2 ** this.idlePasses, RETRY_AFTER_ERROR_MS);
    this.arm(outcome === 'failed' ? RETRY_AFTER_ERROR_MS : idleDelay);
  }

  private onFencedOut(): void {
    this.fenced = true;
    this.log.warn('health deadline write fenced off: another registry leads; pausing until the election changes');
  }

  /** Takes the due instances off the heap, writes, then puts them back as the view now has them. */
  private async applyDue(): Promise<PassOutcome> {
    const dueIds = this.takeDue(this.scheduler.now());
    try {
      return await this.applyWrites(this.writesFor(dueIds, this.scheduler.now()));
    } finally {
      for (const id of dueIds) this.refresh(id);
    }
  }

  private takeDue(now: number): string[] {
    const ids: string[] = [];
    for (let top = this.peekLive(); top && top.at <= now; top = this.peekLive()) {
      this.heap.pop();
      this.deadlines.delete(top.instanceId);
      ids.push(top.instanceId);
    }
    return ids;
  }

  private writesFor(instanceIds: string[], now: number): Write[] {
    const { view, writer } = this.options;
    const expire: Write[] = [];
    const reap: Write[] = [];
    for (const instanceId of instanceIds) {
      const instance = view.instance(instanceId);
      if (!instance) continue;
      const due = dueAt(instance, (checkId) => view.ttlDeadline(checkId), now);
      for (const checkId of due.expire) expire.push({ run: () => writer.expireCheck(instanceId, checkId), context: { instanceId, checkId } });
      if (due.reap) reap.push({ run: () => writer.reap(instanceId), context: { instanceId, reap: true } });
    }
    return [...expire, ...reap];
  }

  private async applyWrites(writes: Write[]): Promise<PassOutcome> {
    let failed = false;
    let applied = writes.length === 0;
    for (const write of writes) {
      if (this.stopped || !this.options.election.isLeader()) return 'done';
      const result = await this.attempt(write);
      if (result === 'fenced') return 'fenced';
      failed ||= result === 'failed';
      applied ||= result === 'applied';
    }
    return failed ? 'failed' : applied ? 'done' : 'idle';
  }

  private async attempt({ run, context }: Write): Promise<'applied' | 'nothing' | 'failed' | 'fenced'> {
    try {
      const rev = await run();
      if (rev === undefined) return 'nothing';
      this.log.info({ ...context, rev }, 'health deadline applied');
      return 'applied';
    } catch (err) {
      if (isSwitchboardError(err, 'not_leader')) return 'fenced';
      this.log.warn({ ...context, err }, 'health deadline write failed; will retry');
      return 'failed';
    }
  }
}
