import { park } from '../waiters';
import type { KeyValue, WatchEvent } from '../store/store';

/**
 * Consul's KV store as this registry process sees it: every `kv/` key of the Store, held in
 * memory and kept current by the catalog view's change feed (one watch per process), so reads
 * and blocking queries never touch the store.
 *
 * The index of a read (X-Consul-Index, and what a blocking query waits to pass) is the latest
 * revision that touched what the read covers — a write, or a delete, which is why deletes
 * leave a tombstone. Tombstones are bounded: past MAX_TOMBSTONES the oldest go, and the floor
 * rises to their revision, so an index can only err high (a spurious wake-up, which Consul's
 * clients handle), never go back or miss a change.
 */

export const KV_PREFIX = 'kv/';

export interface KvEntry {
  key: string;
  /** The value's bytes, base64 (Consul's `Value`). */
  value: string;
  flags: string;
  createIndex: number;
  modifyIndex: number;
}

/** What a stored KV record holds besides its key; revisions come from the store. */
export interface StoredKv {
  /** base64 */
  v: string;
  /** uint64 as decimal text (Consul's Flags) */
  f: string;
}

const MAX_TOMBSTONES = 10_000;

interface Waiter {
  key: string;
  prefix: boolean;
  finish(woken: boolean): void;
}

export class KvTable {
  private readonly entries = new Map<string, KvEntry>();
  private readonly tombstones = new Map<string, number>();
  /** Every index is at least this: the start of what this table knows, and evicted tombstones. */
  private floor = 1;
  private readonly waiters = new Set<Waiter>();

  /** The whole table from a range read at `rev`. */
  load(rev: number, kvs: readonly KeyValue[]): void {
    this.entries.clear();
    this.tombstones.clear();
    this.floor = Math.max(1, rev);
    for (const kv of kvs) if (kv.key.startsWith(KV_PREFIX)) this.put(kv.key, kv.value, kv.createRev, kv.modRev);
    this.wakeAll();
  }

  /** One change from the feed; true when it was a KV key. */
  apply(event: WatchEvent, rev: number): boolean {
    if (!event.key.startsWith(KV_PREFIX)) return false;
    const key = event.key.slice(KV_PREFIX.length);
    if (event.type === 'put' && event.value !== undefined) {
      this.put(event.key, event.value, event.createRev, event.modRev);
    } else {
      this.entries.delete(key);
      this.tombstones.delete(key);
      this.tombstones.set(key, rev);
      if (this.tombstones.size > MAX_TOMBSTONES) {
        const [oldest, at] = this.tombstones.entries().next().value as [string, number];
        this.tombstones.delete(oldest);
        this.floor = Math.max(this.floor, at);
      }
    }
    this.wake(key);
    return true;
  }

  get(key: string): KvEntry | undefined {
    return this.entries.get(key);
  }

  /** Every entry whose key starts with `prefix`, sorted by key (Consul's order). */
  list(prefix: string): KvEntry[] {
    const out: KvEntry[] = [];
    for (const [key, entry] of this.entries) if (key.startsWith(prefix)) out.push(entry);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** The index of a read of `key` (or of every key under it when `prefix`). */
  index(key: string, prefix: boolean): number {
    let index = this.floor;
    if (!prefix) {
      index = Math.max(index, this.entries.get(key)?.modifyIndex ?? 0, this.tombstones.get(key) ?? 0);
      return index;
    }
    for (const [k, entry] of this.entries) if (k.startsWith(key) && entry.modifyIndex > index) index = entry.modifyIndex;
    for (const [k, at] of this.tombstones) if (k.startsWith(key) && at > index) index = at;
    return index;
  }

  /** Blocking query: resolves once the read's index passes `index`, on timeout, or on abort. */
  async waitForChange(key: string, prefix: boolean, index: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    while (this.index(key, prefix) <= index) {
      const woken = await park(timeoutMs, signal, (parked) => {
        const waiter: Waiter = { key, prefix, finish: parked.finish };
        this.waiters.add(waiter);
        return () => this.waiters.delete(waiter);
      });
      if (!woken) return;
    }
  }

  /** Parked blocking queries (tests check nothing leaks). */
  get pendingWaits(): number {
    return this.waiters.size;
  }

  wakeAll(): void {
    for (const waiter of [...this.waiters]) waiter.finish(true);
  }

  private put(storeKey: string, value: string, createRev: number, modRev: number): void {
    const key = storeKey.slice(KV_PREFIX.length);
    const stored = decodeStored(value);
    this.tombstones.delete(key);
    this.entries.set(key, { key, value: stored.v, flags: stored.f, createIndex: createRev, modifyIndex: modRev });
  }

  private wake(key: string): void {
    for (const waiter of [...this.waiters]) {
      if (waiter.prefix ? key.startsWith(waiter.key) : key === waiter.key) waiter.finish(true);
    }
  }
}

export function encodeStored(value: Buffer, flags: string): string {
  const stored: StoredKv = { v: value.toString('base64'), f: flags };
  return JSON.stringify(stored);
}

/** An unreadable record reads as an empty value rather than breaking the table. */
function decodeStored(text: string): StoredKv {
  try {
    const parsed = JSON.parse(text) as Partial<StoredKv>;
    return { v: typeof parsed.v === 'string' ? parsed.v : '', f: typeof parsed.f === 'string' ? parsed.f : '0' };
  } catch {
    return { v: '', f: '0' };
  }
}
