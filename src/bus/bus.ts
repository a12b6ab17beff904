import type { Instance } from '../catalog/model';

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
  /**
   * The instances that changed at `rev` — the only instance changes in (prevRev, rev] — when
   * the bus carries them (an authenticated bus, a small change): a subscriber whose catalog
   * is at a revision in [prevRev, rev) applies them without asking a registry.
   */
  changes?: InstanceChange[];
}

/** One instance's change: where it was before, what it is after. */
export interface InstanceChange {
  id: string;
  /** The service it belonged to before the change; absent when the change created it. */
  from?: string;
  /** Its record after the change; absent when it was deregistered. */
  to?: Instance;
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
  /**
   * Messages may carry `changes`: only where a subscriber can tell that a registry sent them
   * (Redis with a shared key). Routing data from anyone who can publish would let them point
   * a service anywhere.
   */
  readonly carriesChanges: boolean;
  publish(message: CatalogMessage): Promise<void>;
  subscribe(subscriber: BusSubscriber): () => void;
  close(): Promise<void>;
}
