import type { Bus, BusSubscriber, CatalogMessage } from './bus';

/** In-process bus for `switchboard all`: synchronous fan-out, never disconnected. */
export class LocalBus implements Bus {
  private readonly subscribers = new Set<BusSubscriber>();
  readonly status = 'local';
  /** In-process: the registry's own view is as close as a message, so messages stay names. */
  readonly carriesChanges = false;

  async publish(message: CatalogMessage): Promise<void> {
    for (const s of this.subscribers) s.onMessage(message);
  }

  subscribe(subscriber: BusSubscriber): () => void {
    this.subscribers.add(subscriber);
    // "Connected" from the start; deferred so the caller finishes wiring first.
    queueMicrotask(() => {
      if (this.subscribers.has(subscriber)) subscriber.onConnect();
    });
    return () => this.subscribers.delete(subscriber);
  }

  async close(): Promise<void> {
    this.subscribers.clear();
  }
}
