import { realScheduler, type Scheduler } from '../clock';
import type { Logger } from '../log';
import { wants, type NotifyConfig, type NotifyEvent } from './events';
import { WebhookDestination, type DeliveryResult } from './webhook';

/**
 * The fan-out of notifications: an event goes to every webhook whose rule wants it. `notify`
 * resolves once every destination delivered it or gave up, so a caller that must not lose an
 * event (the registry's leader) can record it as told only then.
 */
export class Notifier {
  private destinations: WebhookDestination[];
  private inProgress = 0;

  constructor(
    private readonly config: Readonly<NotifyConfig>,
    private readonly logger: Logger,
    private readonly scheduler: Scheduler = realScheduler,
  ) {
    this.destinations = this.open();
  }

  get enabled(): boolean {
    return this.config.webhooks.length > 0;
  }

  /** Whether any webhook would want an event of this kind at all (saves work when none does). */
  listensTo(event: NotifyEvent['event']): boolean {
    return this.config.webhooks.some((w) => w.events.includes(event));
  }

  async notify(event: NotifyEvent): Promise<DeliveryResult[]> {
    const targets = this.destinations.filter((d) => wants(d.rule, event));
    this.inProgress++;
    try {
      return await Promise.all(targets.map((d) => d.send(event)));
    } finally {
      this.inProgress--;
    }
  }

  /** Notifications not yet delivered or given up. */
  get pending(): number {
    return this.inProgress;
  }

  /** Drops queued notifications and cancels deliveries in flight; later ones start afresh. */
  reset(): void {
    for (const d of this.destinations) d.close();
    this.destinations = this.open();
  }

  close(): void {
    for (const d of this.destinations) d.close();
    this.destinations = [];
  }

  private open(): WebhookDestination[] {
    const { webhooks, ...delivery } = this.config;
    return webhooks.map((rule) => new WebhookDestination(rule, delivery, this.logger.child({ component: 'notify' }), this.scheduler));
  }
}
