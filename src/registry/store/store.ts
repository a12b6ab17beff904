/**
 * The Store plug point: a small revisioned key-value store with etcd's semantics, so the
 * embedded journal and etcd pass one conformance suite (test/conformance/store-suite.ts).
 *
 * - Every successful txn bumps the store revision by exactly one; all its ops share it.
 * - `modRev` of a key = revision of the txn that last wrote it; `createRev` = when it was
 *   (re)created. A deleted key is absent.
 * - The registry keeps all of its records (instances, TTL deadlines, leader bookkeeping) here.
 */

export interface KeyValue {
  key: string;
  value: string;
  createRev: number;
  modRev: number;
}

/** Compare a key's modRev; modRev 0 means "the key must not exist". */
export interface TxnCompare {
  key: string;
  modRev: number;
}

export type TxnOp = { kind: 'put'; key: string; value: string } | { kind: 'delete'; key: string };

export interface TxnResult {
  /** False when a compare failed; nothing was written. */
  ok: boolean;
  /** The new revision when ok; the store's current revision otherwise. */
  rev: number;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  /** The new value (puts only). */
  value?: string;
  /** The value before this event, when the key existed. */
  prevValue?: string;
  modRev: number;
  createRev: number;
}

/** All events of one revision (one txn), delivered together and in revision order. */
export interface WatchBatch {
  rev: number;
  events: WatchEvent[];
}

export interface WatchListener {
  onBatch(batch: WatchBatch): void;
  /**
   * History before `compactRev` is gone: the watcher stopped. The caller re-reads with
   * `range` and watches again from the range's revision.
   */
  onCompacted(compactRev: number): void;
  /** The store is unreachable; the watcher keeps retrying on its own where it can. */
  onError?(err: Error): void;
}

export interface Watcher {
  close(): void;
}

export interface Store {
  /** `embedded` or `etcd`: shown in logs and /v1/status. */
  readonly kind: string;
  open(): Promise<void>;
  /** Flushes and releases everything (journal fsync, lock file, connections). */
  close(): Promise<void>;
  get(key: string): Promise<KeyValue | undefined>;
  /** Every key with the prefix, consistent at `rev` (the store's revision at the read). */
  range(prefix: string): Promise<{ rev: number; kvs: KeyValue[] }>;
  /** Atomic: if every compare holds, apply every op under one new revision. Durable when it resolves. */
  txn(compares: TxnCompare[], ops: TxnOp[]): Promise<TxnResult>;
  /** Events for keys with the prefix, for revisions strictly after `afterRev`, in order. */
  watch(prefix: string, afterRev: number, listener: WatchListener): Watcher;
}
