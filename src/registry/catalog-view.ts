import type { CatalogDelta, Instance } from '../catalog/model';
import type { Logger } from '../log';
import { gauge } from '../metrics';
import { KvTable } from './kv/kv-table';
import { ChangeRing } from './change-ring';
import { decodeDeadline, decodeInstance } from './instance-codec';
import { INSTANCE_PREFIX, TTL_PREFIX } from './keys';
import type { KeyValue, Store, WatchBatch, WatchEvent, Watcher } from './store/store';
import { ChangeWaiters, RevWaiters } from './waiters';

/** One store batch that changed instances: `services` are the names whose lists changed. */
export interface ViewChange {
  rev: number;
  /** The previous change's revision (the view's catalogRev before this one). */
  prevRev: number;
  services: string[];
}

/**
 * Told of every catalog change. `instanceIds` names the instances the change put or deleted,
 * so a consumer can keep its own index in O(changed); undefined means "unknown, look at
 * everything" (after a resync that re-read the whole catalog). `previous` holds the records
 * those instances had before the change (absent: the change created it), so nobody needs a
 * copy of the catalog of their own to tell what changed.
 */
export type ChangeListener = (change: ViewChange, instanceIds: readonly string[] | undefined, previous: ReadonlyMap<string, Instance> | undefined) => void;

/** Told when TTL deadlines moved: the check IDs, or undefined when every deadline may have. */
export type DeadlineListener = (checkIds: readonly string[] | undefined) => void;

export interface CatalogViewOptions {
  logger: Logger;
  /** How many recent catalog changes `changes()` can answer as a delta; older → full. */
  ringSize?: number;
  /** Upper bound for waits on a revision (`minRev`, read-your-writes). */
  revWaitMs?: number;
}

const DEFAULT_RING_SIZE = 4096;
const DEFAULT_REV_WAIT_MS = 5000;
const RESYNC_RETRY_MS = 1000;
/** Written once into an empty store (see start()); outside the instances/ and ttl/ prefixes. */
const CREATED_KEY = 'meta/created';

const catalogRevision = gauge('switchboard_registry_catalog_revision', 'Store revision of the last catalog change this registry has seen');

/**
 * The registry's in-memory copy of the catalog: it follows the store's change feed, so
 * every read (API, proxies in the same process, the TTL loop) is a map lookup. Records are
 * frozen and shared; a change replaces them, never mutates them.
 */
export class CatalogView {
  private readonly log: Logger;
  private readonly byId = new Map<string, Instance>();
  private readonly byService = new Map<string, Map<string, Instance>>();
  private readonly checkOwners = new Map<string, string>();
  private readonly deadlines = new Map<string, number>();
  private readonly serviceIndexes = new Map<string, number>();
  private readonly changeListeners = new Set<ChangeListener>();
  private readonly deadlineListeners = new Set<DeadlineListener>();
  private readonly changeWaiters = new ChangeWaiters();
  private readonly revWaiters = new RevWaiters();
  private readonly ring: ChangeRing;
  private readonly revWaitMs: number;
  /** Consul's KV store, fed by the same change feed. */
  readonly kv = new KvTable();
  private storeRev = 0;
  private lastChangeRev = 0;
  /** Index reported for a service this view has never seen change. */
  private baseIndex = 1;
  private watcher?: Watcher;
  private resyncTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly store: Store,
    options: CatalogViewOptions,
  ) {
    this.log = options.logger.child({ component: 'catalog-view' });
    this.ring = new ChangeRing(options.ringSize ?? DEFAULT_RING_SIZE, 0);
    this.revWaitMs = options.revWaitMs ?? DEFAULT_REV_WAIT_MS;
  }

  /** Reads the whole catalog, then follows the change feed from that revision. */
  async start(): Promise<void> {
    let snapshot = await this.store.range('');
    if (snapshot.rev === 0) {
      // A brand-new in-process store is at revision 0 (etcd starts at 1). Index 0 is not an
      // index to Consul clients, so "empty" would be reported as 1, the very revision of the
      // first registration: a client blocking on 1 would never see it. One bookkeeping write
      // puts the empty catalog at revision 1, as in etcd.
      await this.store.txn([{ key: CREATED_KEY, modRev: 0 }], [{ kind: 'put', key: CREATED_KEY, value: JSON.stringify({ at: Date.now() }) }]);
      snapshot = await this.store.range('');
    }
    this.loadInitial(snapshot.rev, snapshot.kvs);
    this.follow(snapshot.rev);
  }

  /** Stops following and releases every parked caller. */
  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    clearTimeout(this.resyncTimer);
    this.changeWaiters.wakeAll();
    this.kv.wakeAll();
    this.revWaiters.abandonAll();
  }

  /** The store revision this view has applied (heartbeats included). */
  get rev(): number {
    return this.storeRev;
  }

  /** The last revision that changed any instance; the index of catalog-wide reads. */
  get catalogRev(): number {
    return Math.max(1, this.lastChangeRev);
  }

  /** Revision of the last change to `service` (deletion included); never 0. */
  serviceIndex(service: string): number {
    return Math.max(1, this.serviceIndexes.get(service) ?? this.baseIndex);
  }

  /** The blocking-query index for one service, or catalog-wide when `service` is undefined. */
  indexFor(service: string | undefined): number {
    return service === undefined ? this.catalogRev : this.serviceIndex(service);
  }

  /** Parked blocking queries and read-your-writes waits (tests check nothing leaks). */
  get pendingWaits(): number {
    return this.changeWaiters.size + this.revWaiters.size + this.kv.pendingWaits;
  }

  instance(id: string): Instance | undefined {
    return this.byId.get(id);
  }

  instances(): IterableIterator<Instance> {
    return this.byId.values();
  }

  serviceNames(): string[] {
    return [...this.byService.keys()].sort();
  }

  /** The service's instances sorted by id; empty when the service is unknown. */
  serviceInstances(service: string): Instance[] {
    const members = this.byService.get(service);
    if (!members) return [];
    return [...members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Id of the instance that owns `checkId`. */
  checkOwner(checkId: string): string | undefined {
    return this.checkOwners.get(checkId);
  }

  /** Wall-clock deadline of a TTL check, from its ttl/ key. */
  ttlDeadline(checkId: string): number | undefined {
    return this.deadlines.get(checkId);
  }

  onChange(listener: ChangeListener): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Called when TTL deadlines moved (heartbeats); these never count as catalog changes. */
  onDeadlines(listener: DeadlineListener): () => void {
    this.deadlineListeners.add(listener);
    return () => this.deadlineListeners.delete(listener);
  }

  /**
   * What changed after `sinceRev`, waiting (bounded) until the view has reached `minRev`.
   * Falls back to the whole catalog when `sinceRev` is 0, older than the ring, or newer
   * than the view (the store was reset).
   */
  async changes(sinceRev: number, minRev?: number): Promise<CatalogDelta> {
    if (minRev !== undefined && minRev > this.storeRev) await this.waitForRev(minRev);
    const changed = sinceRev > 0 && sinceRev <= this.storeRev ? this.ring.changedSince(sinceRev) : undefined;
    if (!changed) return { rev: this.storeRev, full: true, services: this.servicesOf(this.byService.keys()) };
    return { rev: this.storeRev, full: false, services: this.servicesOf(changed, true) };
  }

  /**
   * Blocking query: resolves once the index of `service` (or the catalog's) differs from
   * `index`, after `timeoutMs`, or when `signal` aborts. An index ahead of ours (store reset)
   * answers at once.
   */
  async waitForChange(index: number, service: string | undefined, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.stopped || this.indexFor(service) !== index) return;
    await this.changeWaiters.wait(service, timeoutMs, signal);
  }

  /** True once the view includes `rev`; false when that takes longer than the bound. */
  async waitForRev(rev: number, timeoutMs = this.revWaitMs): Promise<boolean> {
    if (this.storeRev >= rev) return true;
    if (this.stopped) return false;
    return this.revWaiters.wait(rev, timeoutMs);
  }

  private servicesOf(names: Iterable<string>, includeEmpty = false): Record<string, Instance[]> {
    const out: Record<string, Instance[]> = {};
    for (const name of names) {
      const list = this.serviceInstances(name);
      if (list.length > 0 || includeEmpty) out[name] = list;
    }
    return out;
  }

  private follow(afterRev: number): void {
    if (this.stopped) return;
    this.watcher = this.store.watch('', afterRev, {
      onBatch: (batch) => this.applyBatch(batch),
      onCompacted: (compactRev) => {
        this.log.warn({ compactRev, rev: this.storeRev }, 'change feed compacted past us; re-reading the catalog');
        this.resync();
      },
      onError: (err) => this.log.warn({ err }, 'store change feed error; the store retries'),
    });
  }

  private resync(): void {
    this.watcher?.close();
    if (this.stopped) return;
    this.store.range('').then(
      (snapshot) => {
        if (this.stopped) return;
        this.reload(snapshot.rev, snapshot.kvs);
        this.follow(snapshot.rev);
      },
      (err: unknown) => {
        this.log.warn({ err }, 'catalog re-read failed; retrying');
        this.resyncTimer = setTimeout(() => this.resync(), RESYNC_RETRY_MS);
      },
    );
  }

  private applyBatch(batch: WatchBatch): void {
    if (this.stopped || batch.rev <= this.storeRev) return;
    const prevRev = this.lastChangeRev;
    const touched = new Set<string>();
    const instanceIds = new Set<string>();
    const previous = new Map<string, Instance>();
    const movedDeadlines: string[] = [];
    for (const event of batch.events) {
      if (event.key.startsWith(INSTANCE_PREFIX)) this.applyInstanceEvent(event, touched, instanceIds, previous);
      else if (event.key.startsWith(TTL_PREFIX)) {
        if (this.applyDeadlineEvent(event)) movedDeadlines.push(event.key.slice(TTL_PREFIX.length));
      } else this.kv.apply(event, batch.rev);
    }
    this.storeRev = batch.rev;
    if (touched.size > 0) this.commitChange(batch.rev, prevRev, [...touched].sort(), [...instanceIds], previous);
    if (movedDeadlines.length > 0) this.notifyDeadlines(movedDeadlines);
    this.revWaiters.reached(batch.rev);
  }

  private applyInstanceEvent(event: WatchEvent, touched: Set<string>, instanceIds: Set<string>, previous: Map<string, Instance>): void {
    const id = event.key.slice(INSTANCE_PREFIX.length);
    const old = this.byId.get(id);
    // The record before the batch: a second event on the same instance must not replace it.
    if (!instanceIds.has(id) && old !== undefined) previous.set(id, old);
    instanceIds.add(id);
    if (old) {
      this.removeInstance(id, old);
      touched.add(old.service);
    }
    if (event.type !== 'put' || event.value === undefined) return;
    const instance = decodeInstance({ key: event.key, value: event.value, createRev: event.createRev, modRev: event.modRev });
    if (!instance) {
      this.log.warn({ key: event.key }, 'unreadable instance record; treating it as absent');
      return;
    }
    this.addInstance(instance);
    touched.add(instance.service);
  }

  private applyDeadlineEvent(event: WatchEvent): boolean {
    const checkId = event.key.slice(TTL_PREFIX.length);
    const deadline = event.type === 'put' && event.value !== undefined ? decodeDeadline(event.value) : undefined;
    if (deadline === undefined) return this.deadlines.delete(checkId);
    this.deadlines.set(checkId, deadline);
    return true;
  }

  private commitChange(rev: number, prevRev: number, services: string[], instanceIds: string[] | undefined, previous: ReadonlyMap<string, Instance> | undefined): void {
    this.lastChangeRev = rev;
    for (const s of services) this.serviceIndexes.set(s, rev);
    this.ring.record(rev, services);
    catalogRevision.set(rev);
    this.changeWaiters.wake(services);
    const change: ViewChange = { rev, prevRev, services };
    this.notify(this.changeListeners, (listener) => listener(change, instanceIds, previous));
  }

  private notifyDeadlines(checkIds: string[] | undefined): void {
    this.notify(this.deadlineListeners, (listener) => listener(checkIds));
  }

  private notify<L>(listeners: Set<L>, call: (listener: L) => void): void {
    for (const listener of [...listeners]) {
      try {
        call(listener);
      } catch (err) {
        this.log.error({ err }, 'catalog view listener failed');
      }
    }
  }

  /** Indexed by its own id string (the one decodeInstance took from the key), not another copy of it. */
  private addInstance(instance: Instance): void {
    const id = instance.id;
    this.byId.set(id, instance);
    let members = this.byService.get(instance.service);
    if (!members) this.byService.set(instance.service, (members = new Map()));
    members.set(id, instance);
    for (const check of instance.checks) this.checkOwners.set(check.checkId, id);
  }

  private removeInstance(id: string, instance: Instance): void {
    this.byId.delete(id);
    const members = this.byService.get(instance.service);
    members?.delete(id);
    if (members?.size === 0) this.byService.delete(instance.service);
    for (const check of instance.checks) {
      if (this.checkOwners.get(check.checkId) === id) this.checkOwners.delete(check.checkId);
    }
  }

  private replaceAll(kvs: KeyValue[]): void {
    this.byId.clear();
    this.byService.clear();
    this.checkOwners.clear();
    this.deadlines.clear();
    for (const kv of kvs) {
      if (kv.key.startsWith(INSTANCE_PREFIX)) {
        const instance = decodeInstance(kv);
        if (instance) this.addInstance(instance);
        else this.log.warn({ key: kv.key }, 'unreadable instance record; treating it as absent');
      } else if (kv.key.startsWith(TTL_PREFIX)) {
        const deadline = decodeDeadline(kv.value);
        if (deadline !== undefined) this.deadlines.set(kv.key.slice(TTL_PREFIX.length), deadline);
      }
    }
  }

  private loadInitial(rev: number, kvs: KeyValue[]): void {
    this.replaceAll(kvs);
    this.kv.load(rev, kvs);
    this.storeRev = rev;
    this.lastChangeRev = rev;
    this.baseIndex = Math.max(1, rev);
    this.ring.reset(rev);
    for (const [service, members] of this.byService) {
      // A loop, not Math.max(...list): a service with very many instances would overflow the stack.
      let index = 0;
      for (const instance of members.values()) index = Math.max(index, instance.modifyIndex);
      this.serviceIndexes.set(service, index);
    }
    catalogRevision.set(rev);
  }

  /**
   * After a compaction (same history, later revision) the old and new states differ by
   * exactly the changes we missed, so diffing them keeps the ring exact. A revision that went
   * backwards means a different store: start over.
   */
  private reload(rev: number, kvs: KeyValue[]): void {
    const before = this.signatures();
    const prevRev = this.lastChangeRev;
    const reset = rev < this.storeRev;
    this.replaceAll(kvs);
    this.kv.load(rev, kvs);
    this.storeRev = rev;
    if (reset) {
      this.serviceIndexes.clear();
      this.loadInitial(rev, kvs);
    }
    const after = this.signatures();
    const changed = [...new Set([...before.keys(), ...after.keys()])].filter((s) => before.get(s) !== after.get(s)).sort();
    // Re-read from scratch: consumers can't be told which instances, so they look at all.
    if (changed.length > 0) this.commitChange(Math.max(1, rev), prevRev, changed, undefined, undefined);
    this.notifyDeadlines(undefined);
    this.revWaiters.reached(rev);
  }

  /** A per-service fingerprint: which instances at which modification. */
  private signatures(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [service, members] of this.byService) {
      const parts = [...members.values()].map((i) => `${i.id}@${i.modifyIndex}`).sort();
      out.set(service, parts.join(','));
    }
    return out;
  }
}
