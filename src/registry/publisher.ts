import type { Bus, CatalogMessage } from '../bus/bus';
import type { Logger } from '../log';
import { counter } from '../metrics';
import type { CatalogView, ViewChange } from './catalog-view';
import type { Election } from './election/election';

export interface PublisherOptions {
  view: Pick<CatalogView, 'onChange'>;
  bus: Bus;
  election: Pick<Election, 'isLeader'>;
  logger: Logger;
}

const published = counter('switchboard_registry_published_total', 'Catalog change messages the leader published to the bus');

/**
 * Leader-only: announces every catalog change on the bus, in revision order, each message
 * naming the previous one's revision so subscribers can tell when they missed one. A failed
 * publish is logged and skipped: the bus is at-most-once and proxies resync on gaps.
 */
export class Publisher {
  private readonly log: Logger;
  private lastRev = 0;
  private tail: Promise<void> = Promise.resolve();
  private unsubscribe?: () => void;

  constructor(private readonly options: PublisherOptions) {
    this.log = options.logger.child({ component: 'publisher' });
  }

  /** Revision of the last message handed to the bus (0 before the first). */
  get lastPublishedRev(): number {
    return this.lastRev;
  }

  start(): void {
    this.unsubscribe ??= this.options.view.onChange((change) => this.onChange(change));
  }

  /** Stops following the view and waits for messages already queued. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.tail;
  }

  private onChange(change: ViewChange): void {
    if (!this.options.election.isLeader()) return;
    const message: CatalogMessage = { rev: change.rev, prevRev: this.lastRev, services: change.services };
    this.lastRev = change.rev;
    // Chained so messages reach the bus in revision order even when publish is slow.
    this.tail = this.tail.then(() => this.send(message));
  }

  private async send(message: CatalogMessage): Promise<void> {
    try {
      await this.options.bus.publish(message);
      published.inc();
    } catch (err) {
      this.log.warn({ err, rev: message.rev }, 'publish failed; subscribers will resync');
    }
  }
}
