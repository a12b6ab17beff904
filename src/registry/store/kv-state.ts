import type {
  KeyValue,
  TxnCompare,
  TxnOp,
  TxnResult,
  WatchBatch,
  WatchEvent,
  WatchListener,
  Watcher,
} from './store';

/** How many past revisions an in-process store keeps for watchers that start behind. */
export const DEFAULT_HISTORY = 10_000;

/**
 * ...and how many bytes of keys and values they may hold at most. Counting records alone let
 * 10,000 KV writes of 512 KiB keep 5 GiB alive for watchers that may never come.
 */
export const DEFAULT_HISTORY_BYTES = 64 * 1024 * 1024;

interface WatchEntry {
  prefix: string;
  listener: WatchListener;
}

/**
 * The in-memory half of an in-process store: keys, revision, a bounded history of batches
 * and live watchers. The embedded store adds durability around it; it is also usable alone
 * (test/helpers/memory-store.ts) in unit tests.
 */
export class KvState {
  private readonly kvs = new Map<string, KeyValue>();
  private readonly history: WatchBatch[] = [];
  /** Bytes of keys and values in `history`, batch by batch (same order). */
  private readonly historySizes: number[] = [];
  private historyBytes = 0;
  private readonly watchers = new Set<WatchEntry>();
  private revision = 0;
  /** Oldest revision whose batch is no longer in `history` (etcd's compact revision). */
  private compactedRev = 0;

  constructor(
    private readonly historyLimit = DEFAULT_HISTORY,
    private readonly historyByteLimit = DEFAULT_HISTORY_BYTES,
  ) {}

  get rev(): number {
    return this.revision;
  }

  get size(): number {
    return this.kvs.size;
  }

  get(key: string): KeyValue | undefined {
    return this.kvs.get(key);
  }

  range(prefix: string): { rev: number; kvs: KeyValue[] } {
    const out: KeyValue[] = [];
    for (const kv of this.kvs.values()) if (kv.key.startsWith(prefix)) out.push(kv);
    out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { rev: this.revision, kvs: out };
  }

  entries(): IterableIterator<KeyValue> {
    return this.kvs.values();
  }

  /** Would the txn succeed? Pure; lets the embedded store journal before applying. */
  comparesHold(compares: TxnCompare[]): boolean {
    return compares.every((c) => (this.kvs.get(c.key)?.modRev ?? 0) === c.modRev);
  }

  txn(compares: TxnCompare[], ops: TxnOp[]): TxnResult {
    if (!this.comparesHold(compares)) return { ok: false, rev: this.revision };
    return { ok: true, rev: this.apply(this.revision + 1, ops) };
  }

  /** Apply ops as revision `rev` (journal replay passes the recorded revision). */
  apply(rev: number, ops: TxnOp[]): number {
    this.revision = rev;
    const events: WatchEvent[] = [];
    for (const op of ops) {
      const prev = this.kvs.get(op.key);
      if (op.kind === 'put') {
        const kv: KeyValue = { key: op.key, value: op.value, createRev: prev?.createRev ?? rev, modRev: rev };
        this.kvs.set(op.key, kv);
        events.push({ type: 'put', key: op.key, value: op.value, prevValue: prev?.value, modRev: rev, createRev: kv.createRev });
      } else if (prev) {
        this.kvs.delete(op.key);
        events.push({ type: 'delete', key: op.key, prevValue: prev.value, modRev: rev, createRev: prev.createRev });
      }
    }
    this.record({ rev, events });
    return rev;
  }

  /** Replace everything with a snapshot (journal load); history starts over at `rev`. */
  restore(rev: number, kvs: KeyValue[]): void {
    this.kvs.clear();
    for (const kv of kvs) this.kvs.set(kv.key, kv);
    this.revision = rev;
    this.history.length = 0;
    this.historySizes.length = 0;
    this.historyBytes = 0;
    this.compactedRev = rev;
  }

  watch(prefix: string, afterRev: number, listener: WatchListener): Watcher {
    const entry: WatchEntry = { prefix, listener };
    if (afterRev < this.compactedRev) {
      const compactRev = this.compactedRev;
      queueMicrotask(() => listener.onCompacted(compactRev));
      return { close: () => undefined };
    }
    // Replay what the caller has not seen, then go live. Both happen in one synchronous
    // step so no batch can slip between replay and registration.
    const backlog = this.history.filter((b) => b.rev > afterRev);
    this.watchers.add(entry);
    for (const batch of backlog) deliver(entry, batch);
    return { close: () => this.watchers.delete(entry) };
  }

  closeWatchers(): void {
    this.watchers.clear();
  }

  private record(batch: WatchBatch): void {
    const size = batchBytes(batch);
    this.history.push(batch);
    this.historySizes.push(size);
    this.historyBytes += size;
    // Trim in chunks of a quarter of either limit: shifting the arrays on every write would
    // make each txn O(history).
    const overCount = this.history.length > this.historyLimit + Math.ceil(this.historyLimit / 4);
    if (overCount || this.historyBytes > this.historyByteLimit) {
      let drop = Math.max(0, this.history.length - this.historyLimit);
      let bytes = this.historyBytes;
      for (let i = 0; i < drop; i++) bytes -= this.historySizes[i];
      // Down to three quarters of the byte limit (the newest batch stays whatever its size).
      while (bytes > (this.historyByteLimit * 3) / 4 && drop < this.history.length - 1) bytes -= this.historySizes[drop++];
      if (drop > 0) {
        const dropped = this.history.splice(0, drop);
        this.historySizes.splice(0, drop);
        this.historyBytes = bytes;
        this.compactedRev = dropped[dropped.length - 1].rev;
      }
    }
    for (const w of this.watchers) deliver(w, batch);
  }
}

function deliver(entry: WatchEntry, batch: WatchBatch): void {
  const events = batch.events.filter((e) => e.key.startsWith(entry.prefix));
  if (events.length > 0) entry.listener.onBatch({ rev: batch.rev, events });
}

/** What a batch keeps alive: its keys and values, the previous values included (UTF-16 units). */
function batchBytes(batch: WatchBatch): number {
  let bytes = 64;
  for (const e of batch.events) bytes += 64 + e.key.length + (e.value?.length ?? 0) + (e.prevValue?.length ?? 0);
  return bytes;
}
