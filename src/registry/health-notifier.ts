import { instanceHealth, type Instance } from '../catalog/model';
import { realScheduler, type Scheduler } from '../clock';
import type { Logger } from '../log';
import type { NotifyEvent } from '../notify/events';
import type { Notifier } from '../notify/notifier';
import type { CatalogView } from './catalog-view';
import type { Election } from './election/election';
import type { Store } from './store/store';

/**
 * Leader-only: turns catalog health changes into notifications, one per state change.
 *
 *  - an instance is *down* while critical; a service is *down* while it has instances but none
 *    the proxy can route to (passing or warning). An instance whose checks have not reported
 *    yet (critical with no output, as registered) is starting, not down: registering an
 *    instance is not an outage, and its first check result decides;
 *  - a change is told only once it has held for `holdDown` (flapping inside it tells nothing);
 *  - what was told is kept in the store (`notify/<subject>` exists while the subject was told
 *    down), written only after every webhook delivered or gave up. A new leader reads it and
 *    tells whatever differs from the catalog: a change the old leader saw but had not finished
 *    telling is told again (at least once), and nothing is told twice in normal operation.
 *
 * Healthy subjects cost no key: a catalog of 100,000 healthy instances stores nothing here.
 */

export interface HealthNotifierOptions {
  view: Pick<CatalogView, 'onChange' | 'instance' | 'instances' | 'serviceInstances' | 'serviceNames'>;
  store: Pick<Store, 'range' | 'txn'>;
  election: Pick<Election, 'isLeader' | 'onChange' | 'fence'>;
  notifier: Notifier;
  holdDownMs: number;
  /** host:port of this registry, for leader-change events. */
  self: () => string;
  logger: Logger;
  scheduler?: Scheduler;
}

export const NOTIFY_PREFIX = 'notify/';

type Subject = `i/${string}` | `s/${string}`;

export class HealthNotifier {
  private readonly log: Logger;
  private readonly scheduler: Scheduler;
  /** Subjects told down (mirrors the store's notify/ keys while leading). */
  private told = new Set<Subject>();
  private readonly timers = new Map<Subject, () => void>();
  /** Subjects with a notification being delivered: evaluated again once it is done. */
  private readonly sending = new Set<Subject>();
  private readonly unsubscribe: Array<() => void> = [];
  private term = 0;
  private isLeading = false;

  constructor(private readonly options: HealthNotifierOptions) {
    this.log = options.logger.child({ component: 'health-notifier' });
    this.scheduler = options.scheduler ?? realScheduler;
  }

  start(): void {
    this.unsubscribe.push(this.options.view.onChange((change, instanceIds) => this.onCatalogChange(change.services, instanceIds)));
    this.unsubscribe.push(this.options.election.onChange((leading) => void this.onLeadership(leading)));
    if (this.options.election.isLeader()) void this.onLeadership(true);
  }

  stop(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    this.isLeading = false;
    this.term++;
    this.cancelTimers();
    this.options.notifier.close();
  }

  private async onLeadership(leading: boolean): Promise<void> {
    const term = ++this.term;
    this.cancelTimers();
    this.isLeading = false;
    if (!leading) {
      // Whatever we were telling, the next leader tells again.
      this.options.notifier.reset();
      return;
    }
    try {
      const { kvs } = await this.options.store.range(NOTIFY_PREFIX);
      if (term !== this.term) return;
      this.told = new Set(kvs.map((kv) => kv.key.slice(NOTIFY_PREFIX.length) as Subject));
    } catch (err) {
      this.log.error({ err }, 'cannot read what was notified: notifications wait for the next leadership');
      return;
    }
    this.isLeading = true;
    void this.options.notifier.notify({ event: 'leader-change', time: new Date(this.scheduler.now()).toISOString(), leader: this.options.self() });
    this.reconcileAll();
  }

  /** Leading, with what was told read from the store (tests wait for it). */
  get leading(): boolean {
    return this.isLeading;
  }

  /** Changes waiting out their hold-down, or being delivered (tests wait for false). */
  get busy(): boolean {
    return this.timers.size > 0 || this.sending.size > 0 || this.options.notifier.pending > 0;
  }

  private onCatalogChange(services: readonly string[], instanceIds: readonly string[] | undefined): void {
    if (!this.isLeading) return;
    if (instanceIds === undefined) return this.reconcileAll();
    for (const id of instanceIds) this.schedule(`i/${id}`);
    for (const service of services) this.schedule(`s/${service}`);
  }

  /** Every subject whose told state differs from the catalog gets its hold-down. */
  private reconcileAll(): void {
    for (const instance of this.options.view.instances()) if (this.differs(`i/${instance.id}`)) this.schedule(`i/${instance.id}`);
    for (const service of this.options.view.serviceNames()) if (this.differs(`s/${service}`)) this.schedule(`s/${service}`);
    for (const subject of this.told) if (this.differs(subject)) this.schedule(subject);
  }

  private schedule(subject: Subject): void {
    this.timers.get(subject)?.();
    if (!this.differs(subject)) {
      this.timers.delete(subject);
      return;
    }
    this.timers.set(
      subject,
      this.scheduler.schedule(this.options.holdDownMs, () => {
        this.timers.delete(subject);
        void this.tell(subject);
      }),
    );
  }

  /** Down now (undefined: the subject is gone from the catalog). */
  private isDown(subject: Subject): boolean | undefined {
    const name = subject.slice(2);
    if (subject.startsWith('i/')) {
      const instance = this.options.view.instance(name);
      return instance === undefined ? undefined : isDown(instance);
    }
    const instances = this.options.view.serviceInstances(name);
    if (instances.length === 0) return undefined;
    return instances.every((i) => instanceHealth(i) === 'critical') && instances.some(isDown);
  }

  private differs(subject: Subject): boolean {
    const down = this.isDown(subject);
    return (down ?? false) !== this.told.has(subject);
  }

  private async tell(subject: Subject): Promise<void> {
    if (!this.isLeading || this.sending.has(subject) || !this.differs(subject)) return;
    const term = this.term;
    const down = this.isDown(subject);
    this.sending.add(subject);
    try {
      // Gone from the catalog: forget it without a message (deregistration is not an outage).
      if (down !== undefined) await this.options.notifier.notify(this.eventFor(subject, down));
      if (term !== this.term) return;
      await this.record(subject, down ?? false);
    } catch (err) {
      this.log.warn({ err, subject }, 'could not record a notification (leadership lost?)');
    } finally {
      this.sending.delete(subject);
    }
    if (term === this.term && this.differs(subject)) this.schedule(subject);
  }

  private async record(subject: Subject, down: boolean): Promise<void> {
    const key = NOTIFY_PREFIX + subject;
    const op = down ? { kind: 'put' as const, key, value: JSON.stringify({ at: this.scheduler.now() }) } : { kind: 'delete' as const, key };
    const result = await this.options.store.txn(this.options.election.fence(), [op]);
    if (!result.ok) throw new Error('fenced off: another registry leads');
    if (down) this.told.add(subject);
    else this.told.delete(subject);
  }

  private eventFor(subject: Subject, down: boolean): NotifyEvent {
    const name = subject.slice(2);
    const time = new Date(this.scheduler.now()).toISOString();
    if (subject.startsWith('s/')) return { event: down ? 'service-down' : 'service-up', time, service: name };
    const instance = this.options.view.instance(name) as Instance;
    return {
      event: down ? 'instance-critical' : 'instance-recovered',
      time,
      service: instance.service,
      instance: { id: instance.id, address: instance.address, port: instance.port, tags: [...instance.tags] },
      status: instanceHealth(instance),
      checks: instance.checks.map((c) => ({ id: c.checkId, name: c.name, status: c.status, output: c.output })),
    };
  }

  private cancelTimers(): void {
    for (const cancel of this.timers.values()) cancel();
    this.timers.clear();
  }
}

/** Critical, and not merely starting: some check reported (it has output) or was never critical. */
function isDown(instance: Instance): boolean {
  return instanceHealth(instance) === 'critical' && instance.checks.some((c) => c.status === 'critical' && c.output !== '');
}
