import type { Bus, CatalogMessage, InstanceChange } from '../bus/bus';
import type { Instance } from '../catalog/model';
import type { Logger } from '../log';
import { counter, gauge } from '../metrics';
import type { Election } from './election/election';
import { decodeInstance } from './instance-codec';
import { INSTANCE_PREFIX } from './keys';
import { PublishCheckpoint } from './publish-checkpoint';
import type { Store, WatchEvent, Watcher } from './store/store';

export interface PublisherOptions {
  store: Store;
  bus: Bus;
  election: Pick<Election, 'isLeader' | 'onChange' | 'fence'>;
  logger: Logger;
  /** Least time between two writes of the published revision (default 100 ms). */
  checkpointIntervalMs?: number;
  /** Pause before retrying a store read that failed (default 1 s). */
  retryMs?: number;
  /**
   * Store the published revision (default true). Off only where no other process could
   * take over and every write must be the caller's own (API tests count store writes).
   */
  persistRevision?: boolean;
}

const published = counter('switchboard_registry_published_total', 'Catalog change messages the leader published to the bus');
const publishFailures = counter('switchboard_registry_publish_failures_total', 'Catalog change messages the bus refused (subscribers resync)');
const publishedRevision = gauge('switchboard_registry_published_revision', 'Revision of the last catalog message this leader handed to the bus');

const DEFAULT_RETRY_MS = 1000;

/**
 * Leader-only: announces every catalog change on the bus in revision order, each message
 * naming the previous one's revision so subscribers can tell when they missed one.
 *
 * It follows the store's change history, not this process's view: on becoming leader it
 * resumes from the revision the previous leader stored (see PublishCheckpoint) and replays
 * every change after it, so a change the old leader committed but never announced is
 * announced now. If that history is compacted, one message naming every service stands in
 * for the missing ones (subscribers fetch what changed since their own revision anyway).
 *
 * A failed publish is counted and skipped, never retried: the bus is at-most-once, the chain
 * goes on from the attempted revision, and subscribers resync on the gap or on reconnect.
 */
export class Publisher {
  private readonly log: Logger;
  private session?: LeaderSession;
  private ending: Promise<void> = Promise.resolve();
  private unsubscribe?: () => void;
  private lastRev = 0;

  constructor(private readonly options: PublisherOptions) {
    this.log = options.logger.child({ component: 'publisher' });
  }

  /** Revision of the last message handed to the bus (0 before the first). */
  get lastPublishedRev(): number {
    return this.lastRev;
  }

  /** Follows leadership: publishes while this process leads. */
  start(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.options.election.onChange((leading) => this.onLeadership(leading));
    this.onLeadership(this.options.election.isLeader());
  }

  /** Stops publishing; messages already queued still go out, and the revision is stored. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.endSession();
    await this.ending;
  }

  private onLeadership(leading: boolean): void {
    if (leading && !this.session && this.unsubscribe) this.beginSession();
    else if (!leading) this.endSession();
  }

  private beginSession(): void {
    const checkpoint = new PublishCheckpoint({
      store: this.options.store,
      election: this.options.election,
      logger: this.options.logger,
      minIntervalMs: this.options.checkpointIntervalMs,
      readOnly: this.options.persistRevision === false,
    });
    const session = new LeaderSession({
      store: this.options.store,
      bus: this.options.bus,
      checkpoint,
      log: this.log,
      retryMs: this.options.retryMs ?? DEFAULT_RETRY_MS,
      attempted: (rev) => {
        this.lastRev = rev;
        publishedRevision.set(rev);
      },
    });
    this.session = session;
    // A new session must not write its first mark before the last one's final write.
    void this.ending.then(() => session.begin());
  }

  private endSession(): void {
    const session = this.session;
    if (!session) return;
    this.session = undefined;
    // Stop following now (a change committed from here on is the next leader's); drain later.
    const closing = session.close();
    this.ending = this.ending.then(() => closing);
  }
}

interface SessionContext {
  store: Store;
  bus: Bus;
  checkpoint: PublishCheckpoint;
  log: Logger;
  retryMs: number;
  /** A message was handed to the bus (or refused by it): the chain has moved on. */
  attempted(rev: number): void;
}

/** One stretch of leadership: resume from the stored revision, then follow the change feed. */
class LeaderSession {
  private readonly serviceIndex = new ServiceIndex();
  private watcher?: Watcher;
  private retryTimer?: NodeJS.Timeout;
  private tail: Promise<void> = Promise.resolve();
  private lastRev = 0;
  /** The newest revision the bus accepted: what a re-announcement chains from. */
  private lastSentRev = 0;
  private closed = false;
  private failing = false;
  /** Services of messages the bus refused since the last accepted one. */
  private unsent = new Set<string>();
  /** The newest revision the bus refused. */
  private unsentRev = 0;
  private reannounceTimer?: NodeJS.Timeout;

  constructor(private readonly ctx: SessionContext) {}

  begin(): void {
    if (!this.closed) void this.resume();
  }

  /** Stops following; queued messages still go out, then the revision is stored (fenced). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.reannounceTimer);
    this.watcher?.close();
    await this.tail;
    await this.ctx.checkpoint.close();
  }

  private async resume(): Promise<void> {
    try {
      const { stored, storeRev } = await this.ctx.checkpoint.load();
      if (this.closed) return;
      // A mark ahead of the store means another store (reset or restored): start from now.
      const from = stored > 0 && stored <= storeRev ? stored : storeRev;
      this.ctx.log.info({ from, stored, storeRev }, 'leading: publishing every catalog change after the last published revision');
      this.lastRev = from;
      this.lastSentRev = from;
      this.follow(from);
    } catch (err) {
      this.retry(err, 'reading the published revision failed');
    }
  }

  private follow(afterRev: number): void {
    if (this.closed) return;
    this.watcher = this.ctx.store.watch(INSTANCE_PREFIX, afterRev, {
      onBatch: (batch) => {
        const { services, changes } = this.serviceIndex.describe(batch.events, this.ctx.bus.carriesChanges);
        this.enqueue(batch.rev, services, changes);
      },
      onCompacted: (compactRev) => void this.afterCompaction(compactRev),
      onError: (err) => this.ctx.log.debug({ err }, 'change feed interrupted; the store reconnects'),
    });
  }

  /** History we had to replay is gone: announce every service at the current revision. */
  private async afterCompaction(compactRev: number): Promise<void> {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.closed) return;
    try {
      const { rev, kvs } = await this.ctx.store.range(INSTANCE_PREFIX);
      if (this.closed) return;
      this.ctx.log.warn({ compactRev, from: this.lastRev, rev }, 'change history compacted: announcing every service');
      const names = new Set<string>();
      for (const kv of kvs) {
        const service = serviceIn(kv.value);
        if (service !== undefined) names.add(service);
      }
      // Events were skipped: what the index remembers may be stale.
      this.serviceIndex.clear();
      this.enqueue(rev, [...names].sort());
      this.follow(Math.max(rev, this.lastRev));
    } catch (err) {
      this.retry(err, 're-reading the catalog after a compaction failed', () => void this.afterCompaction(compactRev));
    }
  }

  private retry(err: unknown, what: string, again: () => void = () => void this.resume()): void {
    if (this.closed) return;
    this.ctx.log.warn({ err, retryInMs: this.ctx.retryMs }, `${what}; retrying`);
    this.retryTimer = setTimeout(again, this.ctx.retryMs);
  }

  private enqueue(rev: number, services: string[], changes?: InstanceChange[]): void {
    if (this.closed || rev <= this.lastRev) return;
    const message: CatalogMessage = { rev, prevRev: this.lastRev, services, ...(changes !== undefined ? { changes } : {}) };
    this.lastRev = rev;
    // Chained so messages reach the bus in revision order even when publish is slow.
    this.tail = this.tail.then(() => this.send(message));
  }

  private async send(message: CatalogMessage): Promise<void> {
    try {
      await this.ctx.bus.publish(message);
      published.inc();
      if (this.failing) this.ctx.log.info({ rev: message.rev }, 'publishing works again');
      this.failing = false;
      if (message.rev >= this.unsentRev) this.unsent.clear();
      this.lastSentRev = Math.max(this.lastSentRev, message.rev);
    } catch (err) {
      publishFailures.inc();
      // One warning per outage: every change would otherwise log one.
      if (!this.failing) this.ctx.log.warn({ err, rev: message.rev }, 'publish failed; announcing the latest revision again until the bus takes it');
      this.failing = true;
      for (const service of message.services) this.unsent.add(service);
      this.unsentRev = Math.max(this.unsentRev, message.rev);
      this.scheduleReannounce();
    }
    this.ctx.attempted(message.rev);
    this.ctx.checkpoint.save(message.rev);
  }

  /**
   * A refused message may be one that subscribers which reconnected earlier never hear of:
   * they resync on their own reconnect, not on our failures. So the newest revision is
   * announced again (chained from the last accepted one: a subscriber that missed more sees a
   * gap) until the bus takes it.
   */
  private scheduleReannounce(): void {
    if (this.closed || this.reannounceTimer !== undefined) return;
    this.reannounceTimer = setTimeout(() => {
      this.reannounceTimer = undefined;
      // Decided in the chain, after what is queued: a newer message may have gone out meanwhile.
      this.tail = this.tail.then(() => {
        if (this.closed || this.unsentRev <= this.lastSentRev) return;
        return this.send({ rev: this.unsentRev, prevRev: this.lastSentRev, services: [...this.unsent].sort() });
      });
    }, this.ctx.retryMs);
  }
}

/**
 * The services a batch of instance events touched (an instance can move between services:
 * both its old and its new service count). An event's previous value is the value of the
 * key's last event, so the service found then is remembered and each stored value is parsed
 * once; only a key not seen since the session began (or since a compaction) costs a parse
 * of its previous value.
 */
class ServiceIndex {
  private readonly byKey = new Map<string, string>();

  /**
   * The services the events touched and, when `withChanges`, the instance changes themselves
   * (undefined past MAX_CHANGES_BYTES, or when an event's previous service is unknowable).
   */
  describe(events: WatchEvent[], withChanges: boolean): { services: string[]; changes?: InstanceChange[] } {
    const names = new Set<string>();
    let changes: InstanceChange[] | undefined = withChanges ? [] : undefined;
    let bytes = 0;
    for (const event of events) {
      const before = this.byKey.get(event.key) ?? (event.prevValue === undefined ? undefined : serviceIn(event.prevValue));
      // Parsed once: whole while the changes still ride on the message, for its name only after that.
      const record = changes !== undefined ? recordIn(event) : undefined;
      const after = record !== undefined ? record.service : event.type === 'put' && event.value !== undefined ? serviceIn(event.value) : undefined;
      if (before !== undefined) names.add(before);
      if (after !== undefined) {
        names.add(after);
        this.byKey.set(event.key, after);
      } else {
        this.byKey.delete(event.key);
      }
      if (changes === undefined) continue;
      bytes += event.key.length + (event.value?.length ?? 0) + 64;
      // A delete whose instance's service nobody knows cannot be applied by a subscriber.
      const unknowable = event.type === 'delete' && before === undefined;
      if (bytes > MAX_CHANGES_BYTES || unknowable) changes = undefined;
      else changes.push(changeOf(event, before, record));
    }
    return { services: [...names].sort(), ...(changes !== undefined ? { changes } : {}) };
  }

  clear(): void {
    this.byKey.clear();
  }
}

/**
 * Instance changes ride on a message up to this size (their JSON, roughly); a larger batch
 * (a bulk registration, a resync) goes as names and subscribers fetch. Redis delivers every
 * message to every proxy: a few KiB each is what keeps the bus cheap.
 */
const MAX_CHANGES_BYTES = 64 * 1024;

/** The record a put stores, decoded as the registry's view decodes it; undefined for a delete or an unreadable record. */
function recordIn(event: WatchEvent): Instance | undefined {
  if (event.type !== 'put' || event.value === undefined) return undefined;
  return decodeInstance({ key: event.key, value: event.value, createRev: event.createRev, modRev: event.modRev });
}

/** An event as a subscriber applies it: `to` is its record (none: the instance is gone). */
function changeOf(event: WatchEvent, before: string | undefined, to: Instance | undefined): InstanceChange {
  const id = event.key.slice(INSTANCE_PREFIX.length);
  return { id, ...(before !== undefined ? { from: before } : {}), ...(to !== undefined ? { to } : {}) };
}

/** Only the service name of a stored instance (no full decode: nothing else is needed here). */
function serviceIn(value: string): string | undefined {
  try {
    const service = (JSON.parse(value) as { service?: unknown }).service;
    return typeof service === 'string' ? service : undefined;
  } catch {
    return undefined;
  }
}
