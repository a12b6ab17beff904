import type { Logger } from '../../log';
import type { CatalogView } from '../catalog-view';
import type { CatalogWriter } from '../catalog-writer';
import type { Election } from '../election/election';
import { canExpire, reapTime, ttlExpiry } from './deadlines';

export interface TtlExpiryOptions {
  view: CatalogView;
  writer: Pick<CatalogWriter, 'expireCheck' | 'reap'>;
  election: Election;
  logger: Logger;
  now?: () => number;
}

/** What is due now, and the earliest deadline of all (past ones included). */
interface DueWork {
  expire: { instanceId: string; checkId: string }[];
  reap: string[];
  next?: number;
}

type PassOutcome = 'done' | 'idle' | 'failed';

/** Longest single sleep; a far deadline is simply re-evaluated when it fires. */
const MAX_SLEEP_MS = 60_000;
const RETRY_AFTER_ERROR_MS = 1000;
/** After a pass, don't spin while our view still lags a heartbeat the writer already saw. */
const MIN_SLEEP_AFTER_RUN_MS = 20;

/**
 * Leader-only: turns lapsed TTL checks critical and deregisters instances that stayed
 * critical past DeregisterCriticalServiceAfter. One timer, armed for the earliest deadline
 * in the view; catalog changes re-arm it. Heartbeats only ever push deadlines later, so
 * they don't re-arm: an early wake-up finds nothing due and sleeps again.
 */
export class TtlExpiryLoop {
  private readonly log: Logger;
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = true;
  private idlePasses = 0;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly options: TtlExpiryOptions) {
    this.log = options.logger.child({ component: 'ttl-expiry' });
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.stopped = false;
    this.unsubscribe.push(this.options.view.onChange(() => this.arm()));
    this.unsubscribe.push(this.options.election.onChange(() => this.arm()));
    this.arm();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const off of this.unsubscribe.splice(0)) off();
    clearTimeout(this.timer);
    await this.running;
  }

  /** Sleep until the earliest deadline (or not at all when there is none or we don't lead). */
  private arm(minDelayMs = 0): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    // A pass in progress re-arms when it ends, with everything it changed in view.
    if (this.stopped || this.running || !this.options.election.isLeader()) return;
    const wait = this.untilNextDeadline();
    if (wait === undefined) return;
    this.timer = setTimeout(() => this.runOnce(), Math.min(Math.max(minDelayMs, wait), MAX_SLEEP_MS));
  }

  private untilNextDeadline(): number | undefined {
    const { next } = this.findDue(this.now());
    return next === undefined ? undefined : next - this.now();
  }

  private runOnce(): void {
    this.timer = undefined;
    this.running = this.applyDue().then(
      (outcome) => this.afterRun(outcome),
      (err: unknown) => {
        this.log.error({ err }, 'TTL expiry pass failed');
        this.afterRun('failed');
      },
    );
  }

  /**
   * 'idle' means the view said something was due but the store (read fresh by the writer)
   * disagreed: our view lags a heartbeat. Back off until it catches up rather than spin.
   */
  private afterRun(outcome: PassOutcome): void {
    this.running = undefined;
    this.idlePasses = outcome === 'idle' ? this.idlePasses + 1 : 0;
    const idleDelay = Math.min(MIN_SLEEP_AFTER_RUN_MS * 2 ** this.idlePasses, RETRY_AFTER_ERROR_MS);
    this.arm(outcome === 'failed' ? RETRY_AFTER_ERROR_MS : idleDelay);
  }

  private async applyDue(): Promise<PassOutcome> {
    const due = this.findDue(this.now());
    const writes: [() => Promise<number | undefined>, object][] = [
      ...due.expire.map(({ instanceId, checkId }): [() => Promise<number | undefined>, object] => [
        () => this.options.writer.expireCheck(instanceId, checkId),
        { instanceId, checkId },
      ]),
      ...due.reap.map((instanceId): [() => Promise<number | undefined>, object] => [
        () => this.options.writer.reap(instanceId),
        { instanceId, reap: true },
      ]),
    ];
    let failed = false;
    let applied = writes.length === 0;
    for (const [write, context] of writes) {
      if (this.stopped || !this.options.election.isLeader()) return 'done';
      const result = await this.attempt(write, context);
      failed ||= result === 'failed';
      applied ||= result === 'applied';
    }
    return failed ? 'failed' : applied ? 'done' : 'idle';
  }

  private async attempt(write: () => Promise<number | undefined>, context: object): Promise<'applied' | 'nothing' | 'failed'> {
    try {
      const rev = await write();
      if (rev === undefined) return 'nothing';
      this.log.info({ ...context, rev }, 'health deadline applied');
      return 'applied';
    } catch (err) {
      this.log.warn({ ...context, err }, 'health deadline write failed; will retry');
      return 'failed';
    }
  }

  private findDue(now: number): DueWork {
    const due: DueWork = { expire: [], reap: [] };
    const consider = (at: number | undefined): boolean => {
      if (at === undefined) return false;
      if (due.next === undefined || at < due.next) due.next = at;
      return at <= now;
    };
    for (const instance of this.options.view.instances()) {
      for (const check of instance.checks) {
        if (!canExpire(check)) continue;
        const at = ttlExpiry(check, this.options.view.ttlDeadline(check.checkId));
        if (consider(at)) due.expire.push({ instanceId: instance.id, checkId: check.checkId });
      }
      if (consider(reapTime(instance))) due.reap.push(instance.id);
    }
    return due;
  }
}
