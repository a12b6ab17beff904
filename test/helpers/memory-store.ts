import { KvState } from '../../src/registry/store/kv-state';
import type { KeyValue, Store, TxnCompare, TxnOp, TxnResult, WatchListener, Watcher } from '../../src/registry/store/store';

/** Not durable: for unit tests and throwaway runs. Same semantics as the embedded store. */
export class MemoryStore implements Store {
  readonly kind = 'memory';
  private readonly state: KvState;

  constructor(options: { historyLimit?: number } = {}) {
    this.state = new KvState(options.historyLimit);
  }

  async open(): Promise<void> {}

  async close(): Promise<void> {
    this.state.closeWatchers();
  }

  async get(key: string): Promise<KeyValue | undefined> {
    return this.state.get(key);
  }

  async range(prefix: string): Promise<{ rev: number; kvs: KeyValue[] }> {
    return this.state.range(prefix);
  }

  async txn(compares: TxnCompare[], ops: TxnOp[]): Promise<TxnResult> {
    return this.state.txn(compares, ops);
  }

  watch(prefix: string, afterRev: number, listener: WatchListener): Watcher {
    return this.state.watch(prefix, afterRev, listener);
  }
}
