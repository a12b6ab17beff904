/**
 * The invalidation bus: the registry leader announces every catalog change to all proxies.
 * Delivery is at-most-once; `prevRev` chains messages so a subscriber can tell it missed one.
 */
export interface CatalogMessage {
  /** Catalog revision after this change. */
  rev: number;
  /** Revision of the previous published message (0 for the first). */
  prevRev: number;
  /** Service names whose instances changed in (prevRev, rev]. */
  services: string[];
}

export interface BusSubscriber {
  onMessage(message: CatalogMessage): void;
  /**
   * Called on every (re)connect, including the first: messages may have been missed while
   * disconnected, so the subscriber must resync.
   */
  onConnect(): void;
}

export interface Bus {
  /** For the web UI's cluster page: `local`, or Redis `connected` / `disconnected` / `idle` (not used yet). */
  readonly status: string;
  publish(message: CatalogMessage): Promise<void>;
  subscribe(subscriber: BusSubscriber): () => void;
  close(): Promise<void>;
}
