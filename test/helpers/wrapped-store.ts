/**
 * A MemoryStore with switches tests flip to play a real store's bad days: a change feed that
 * lags (`hold`/`release`), a feed that drops and then reports compaction, and a store that
 * is unreachable (`failing`).
 */
import { MemoryStore } from './memory-store';
import type { KeyValue, Store, TxnCompare, TxnOp, TxnResult, WatchBatch, WatchListener, Watcher } from '../../src/registry/store/store';

export class WrappedStore implements Store {
  readonly kind = 'wrapped';
  readonly inner: MemoryStore;
  /** While true every call rejects as an unreachable store would. */
  failing = false;
  /** Counts txns that reached the inner store (successful or not). */
  txnCount = 0;
  private held?: (() => void)[];
  private dropping = false;
  private readonly listeners = new Set<WatchListener>();

  constructor(options: { historyLimit?: number } = {}) {
    this.inner = new MemoryStore(options);
  }

  /** Queue change-feed batches instead of delivering them. */
  hold(): void {
    this.held ??= [];
  }

  /** Deliver what was queued, in order, and stop queueing. */
  release(): void {
    const queued = this.held ?? [];
    this.held = undefined;
    for (const deliver of queued) deliver();
  }

  /** Lose change-feed batches from now on (a watch stream that broke). */
  dropFeed(): void {
    this.dropping = true;
  }

  /** Tell every watcher its history is gone, as etcd does after a compaction. */
  reportCompaction(): void {
    this.dropping = false;
    const rev = this.inner['state'].rev as number;
    for (const listener of [...this.listeners]) listener.onCompacted(rev);
  }

  async open(): Promise<void> {
    await this.inner.open();
  }

  async close(): Promise<void> {
    await this.inner.close();
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.check();
    return this.inner.get(key);
  }

  async range(prefix: string): Promise<{ rev: number; kvs: KeyValue[] }> {
    this.check();
    return this.inner.range(prefix);
  }

  async txn(compares: TxnCompare[], ops: TxnOp[]): Promise<TxnResult> {
    this.check();
    this.txnCount++;
    return this.inner.txn(compares, ops);
  }

  watch(prefix: string, afterRev: number, listener: WatchListener): Watcher {
    const onBatch = (batch: WatchBatch) => {
      if (this.dropping) return;
      if (this.held) this.held.push(() => listener.onBatch(batch));
      else listener.onBatch(batch);
    };
    this.listeners.add(listener);
    const inner = this.inner.watch(prefix, afterRev, { onBatch, onCompacted: (rev) => listener.onCompacted(rev) });
    return {
      close: () => {
        inner.close();
        this.listeners.delete(listener);
      },
    };
  }

  private check(): void {
    if (this.failing) throw new Error('connect ECONNREFUSED 127.0.0.1:2379');
  }
}
