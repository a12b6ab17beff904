import { isDeepStrictEqual } from 'node:util';
import type { Bus, BusSubscriber, CatalogMessage, InstanceChange } from '../bus/bus';
import { instanceHealth, type CatalogDelta, type Instance } from '../catalog/model';
import type { CatalogSource } from '../catalog/source';
import type { Logger } from '../log';
import { counter, gauge } from '../metrics';

/**
 * The proxy's copy of the catalog. The bus says *that* something changed; the source says
 * *what* — or the message itself does, when the bus carries signed instance changes. Bus
 * delivery is at-most-once, so correctness comes from resyncing (on connect, on a `prevRev`
 * gap, periodically) and speed from the messages.
 *
 * One fetch at a time: messages that arrive while a fetch runs are folded into one more
 * fetch afterwards. The revision never goes backwards. When the source fails, the last
 * catalog keeps serving and the fetch is retried with capped backoff.
 */

export interface CatalogUpdate {
  rev: number;
  /** Changed services only, with their full instance lists; empty = the service is gone. */
  services: ReadonlyMap<string, readonly Instance[]>;
}

export type CatalogListener = (update: CatalogUpdate) => void;

export type ResyncReason = 'connect' | 'gap' | 'periodic';

export interface CatalogCacheOptions {
  source: CatalogSource;
  bus: Bus;
  logger: Logger;
  /** Anti-entropy period; 0 turns it off. */
  resyncIntervalMs: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

const resyncs = counter('switchboard_proxy_catalog_resyncs_total', 'Catalog resyncs by reason', ['reason']);
const appliedFromBus = counter('switchboard_proxy_catalog_bus_changes_applied_total', 'Catalog changes applied straight from a bus message, without asking a registry');
const ignoredTotal = counter('switchboard_proxy_catalog_announcements_ignored_total', 'Bus announcements not acted on, by reason', ['reason']);
// min across workers: with --workers N, /metrics shows the revision of the worker furthest behind.
const revision = gauge('switchboard_proxy_catalog_revision', 'Catalog revision the proxy serves from', [], 'min');

export class CatalogCache implements BusSubscriber {
  private readonly source: CatalogSource;
  private readonly bus: Bus;
  private readonly logger: Logger;
  private readonly resyncIntervalMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly listeners = new Set<CatalogListener>();
  private catalog = new Map<string, readonly Instance[]>();
  private currentRev = 0;
  private synced = false;
  /** Highest revision we know exists (applied or announced). */
  private seenRev = 0;
  /** Fetch wanted: `wantRev` = some message announced this revision; `wantFresh` = ask anyway. */
  private wantRev = 0;
  private wantFresh = false;
  private running: Promise<void> | undefined;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private periodicTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  constructor(options: CatalogCacheOptions) {
    this.source = options.source;
    this.bus = options.bus;
    this.logger = options.logger;
    this.resyncIntervalMs = options.resyncIntervalMs;
    this.retryBaseMs = options.retryBaseMs ?? 200;
    this.retryMaxMs = options.retryMaxMs ?? 10_000;
  }

  /** When and why the cache last resynced (the web UI's cluster page). */
  lastResync: { at: number; reason: string } | undefined = undefined;

  get rev(): number {
    return this.currentRev;
  }

  /** True once the first sync succeeded (the proxy's /readyz). */
  get ready(): boolean {
    return this.synced;
  }

  services(): ReadonlyMap<string, readonly Instance[]> {
    return this.catalog;
  }

  instances(service: string): readonly Instance[] | undefined {
    return this.catalog.get(service);
  }

  onUpdate(listener: CatalogListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Subscribes to the bus and fetches right away (the bus may be down at startup). */
  start(): void {
    if (this.unsubscribe || this.stopped) return;
    this.unsubscribe = this.bus.subscribe(this);
    if (this.resyncIntervalMs > 0) {
      this.periodicTimer = setInterval(() => this.resync('periodic'), this.resyncIntervalMs);
      this.periodicTimer.unref();
    }
    this.request(0, true);
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearInterval(this.periodicTimer);
    clearTimeout(this.retryTimer);
  }

  onConnect(): void {
    this.resync('connect');
  }

  onMessage(message: CatalogMessage): void {
    if (message.rev <= this.currentRev) return;
    // Before the first sync every message looks like a gap; the startup fetch covers it.
    if (this.synced && message.prevRev > this.seenRev) {
      resyncs.inc({ reason: 'gap' });
      this.logger.info({ rev: message.rev, prevRev: message.prevRev, known: this.seenRev }, 'catalog message gap: resyncing');
    }
    if (message.rev > this.seenRev) this.seenRev = message.rev;
    if (message.changes !== undefined && this.canApply(message)) return this.applyChanges(message.rev, message.changes);
    this.request(message.rev, false);
  }

  /**
   * A message's changes are every instance change in (prevRev, rev]: they take a catalog at
   * any revision in [prevRev, rev) to `rev` — unless a fetch is under way, whose answer may
   * land at any revision (then it is asked for `rev`, as without changes).
   */
  private canApply(message: CatalogMessage): boolean {
    return this.synced && this.running === undefined && message.prevRev <= this.currentRev;
  }

  private applyChanges(rev: number, changes: readonly InstanceChange[]): void {
    const lists = new Map<string, Instance[]>();
    const listOf = (service: string): Instance[] => {
      let list = lists.get(service);
      if (list === undefined) lists.set(service, (list = [...(this.catalog.get(service) ?? [])]));
      return list;
    };
    for (const change of changes) {
      if (change.from !== undefined) {
        const list = listOf(change.from);
        const at = list.findIndex((instance) => instance.id === change.id);
        if (at >= 0) list.splice(at, 1);
      }
      if (change.to !== undefined) {
        const list = listOf(change.to.service);
        const at = list.findIndex((instance) => instance.id === change.id);
        if (at >= 0) list[at] = change.to;
        else list.push(change.to);
      }
    }
    appliedFromBus.inc();
    this.apply({ rev, full: false, services: Object.fromEntries(lists) });
  }

  /** Fetches what changed since our revision; resolves once no fetch is wanted or running. */
  resync(reason: ResyncReason): Promise<void> {
    resyncs.inc({ reason });
    this.lastResync = { at: Date.now(), reason };
    return this.request(0, true);
  }

  /** Resolves when no fetch is running (tests, shutdown). */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private request(minRev: number, fresh: boolean): Promise<void> {
    if (minRev > this.wantRev) this.wantRev = minRev;
    if (fresh) this.wantFresh = true;
    if (!this.running && this.fetchWanted()) this.running = this.fetchLoop();
    return this.idle();
  }

  private fetchWanted(): boolean {
    return !this.stopped && (this.wantFresh || this.wantRev > this.currentRev);
  }

  private async fetchLoop(): Promise<void> {
    try {
      while (this.fetchWanted()) {
        this.wantFresh = false;
        const minRev = this.wantRev > this.currentRev ? this.wantRev : undefined;
        try {
          const delta = await this.source.changes(this.currentRev, minRev);
          if (this.stopped) return;
          this.apply(delta);
        } catch (err) {
          // A failed or malformed answer: keep the catalog we have and ask again later.
          this.scheduleRetry(err);
          return;
        }
        this.recovered();
        this.settleWanted(minRev);
      }
    } finally {
      // Cleared in the same tick as the last check, so a message can never slip in between.
      this.running = undefined;
    }
  }

  /**
   * The source waits only briefly for `minRev`. If it still answered with an older view,
   * asking again at once would spin; the next message or the periodic check will ask.
   */
  private settleWanted(minRev: number | undefined): void {
    if (minRev === undefined || this.currentRev >= minRev || this.wantRev !== minRev) return;
    // The registry never reached the announced revision: a lagging registry, or a message
    // a forger put on the bus. Either way it is not trusted further: its revision no longer
    // counts as seen (or every later message would look old), and one more fetch without
    // waiting picks up what real messages announced while this one was waited for.
    ignoredTotal.inc({ reason: 'ahead_of_registry' });
    this.logger.info({ rev: this.currentRev, minRev }, 'the registry is behind the announced revision: the announcement is ignored');
    this.wantRev = this.currentRev;
    this.seenRev = Math.min(this.seenRev, this.currentRev);
    this.wantFresh = true;
  }

  private scheduleRetry(err: unknown): void {
    this.failures++;
    const delay = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(this.failures - 1, 20));
    this.logger.warn({ err, failures: this.failures, retryInMs: delay }, 'catalog fetch failed: serving the last catalog');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.request(0, true), delay);
    this.retryTimer.unref();
  }

  private recovered(): void {
    if (this.failures > 0) this.logger.info({ failures: this.failures }, 'catalog fetch recovered');
    this.failures = 0;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private apply(delta: CatalogDelta): void {
    if (delta.rev < this.currentRev) {
      this.logger.warn({ rev: delta.rev, current: this.currentRev }, 'ignoring catalog delta older than ours');
      return;
    }
    const changed = delta.full ? this.replaceAll(delta.services) : this.replaceSome(delta.services);
    this.currentRev = delta.rev;
    if (delta.rev > this.seenRev) this.seenRev = delta.rev;
    this.synced = true;
    revision.set(delta.rev);
    if (changed.size > 0) this.emit({ rev: delta.rev, services: changed });
  }

  private replaceAll(services: Record<string, Instance[]>): Map<string, readonly Instance[]> {
    const changed = this.replaceSome(services);
    for (const name of [...this.catalog.keys()]) {
      if (Object.prototype.hasOwnProperty.call(services, name)) continue;
      this.catalog.delete(name);
      changed.set(name, []);
    }
    return changed;
  }

  private replaceSome(services: Record<string, Instance[]>): Map<string, readonly Instance[]> {
    const changed = new Map<string, readonly Instance[]>();
    for (const [name, list] of Object.entries(services)) {
      const next = sortById(list);
      const previous = this.catalog.get(name) ?? [];
      if (next.length === 0) this.catalog.delete(name);
      else this.catalog.set(name, next);
      if (!sameForRouting(previous, next)) changed.set(name, next);
    }
    return changed;
  }

  private emit(update: CatalogUpdate): void {
    for (const listener of this.listeners) {
      try {
        listener(update);
      } catch (err) {
        this.logger.error({ err }, 'catalog listener failed');
      }
    }
  }
}

function sortById(instances: readonly Instance[]): Instance[] {
  return [...instances].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Equal for everything the data plane acts on. Check output, timestamps and modify indexes
 * change on every heartbeat; rebuilding pools for those would be work for nothing.
 */
function sameForRouting(a: readonly Instance[], b: readonly Instance[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (x.id !== y.id || x.address !== y.address || x.port !== y.port) return false;
    if (instanceHealth(x) !== instanceHealth(y)) return false;
    if (!isDeepStrictEqual(x.weights, y.weights) || !isDeepStrictEqual(x.tags, y.tags)) return false;
    if (!isDeepStrictEqual(x.meta, y.meta)) return false;
  }
  return true;
}
