import { guardStore } from '../store/guard';
import type { Store, TxnCompare, TxnOp } from '../store/store';
import { KV_PREFIX, encodeStored, type KvTable } from './kv-table';

/**
 * Writes to Consul's KV store, as Store transactions: durable and revisioned like the catalog
 * (the embedded journal or etcd). `cas` is Consul's check-and-set on ModifyIndex — 0 means
 * "only if the key does not exist" — done with the store's own compare, so two writers can
 * never both win.
 */

/** etcd refuses transactions of more than 128 operations (--max-txn-ops): a recursive delete goes in chunks. */
const MAX_TXN_OPS = 128;

export interface KvWriteResult {
  /** False when a cas did not hold: nothing was written. */
  ok: boolean;
  /** The store revision of the write (or the current one when nothing was written). */
  rev: number;
}

export class KvWriter {
  constructor(
    private readonly store: Store,
    private readonly table: KvTable,
  ) {}

  put(key: string, value: Buffer, flags: string, cas?: number): Promise<KvWriteResult> {
    const compares: TxnCompare[] = cas === undefined ? [] : [{ key: KV_PREFIX + key, modRev: cas }];
    return guardStore(() => this.store.txn(compares, [{ kind: 'put', key: KV_PREFIX + key, value: encodeStored(value, flags) }]));
  }

  /**
   * Deletes `key`, or every key under it with `recurse` (atomically up to 128 keys; beyond
   * that in chunks, each atomic). With `cas`, only a single key, only at that ModifyIndex.
   */
  async delete(key: string, options: { recurse: boolean; cas?: number }): Promise<KvWriteResult> {
    if (!options.recurse) {
      const compares: TxnCompare[] = options.cas === undefined ? [] : [{ key: KV_PREFIX + key, modRev: options.cas }];
      return guardStore(() => this.store.txn(compares, [{ kind: 'delete', key: KV_PREFIX + key }]));
    }
    const keys = this.table.list(key).map((e) => e.key);
    let rev = 0;
    for (let i = 0; i < keys.length; i += MAX_TXN_OPS) {
      const ops: TxnOp[] = keys.slice(i, i + MAX_TXN_OPS).map((k) => ({ kind: 'delete', key: KV_PREFIX + k }));
      rev = (await guardStore(() => this.store.txn([], ops))).rev;
    }
    if (keys.length === 0) rev = (await guardStore(() => this.store.range(KV_PREFIX + key))).rev;
    return { ok: true, rev };
  }
}
