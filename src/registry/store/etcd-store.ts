import type { ICompare, IEvent, IKeyValue, IRequestOp } from 'etcd3';
import type { Logger } from '../../log';
import { DEFAULT_REQUEST_TIMEOUT_MS, EtcdConnection, prefixRangeEnd, rangeStart, toNumber } from './etcd-client';
import { EtcdPrefixWatch } from './etcd-watch';
import type {
  KeyValue,
  Store,
  TxnCompare,
  TxnOp,
  TxnResult,
  WatchEvent,
  WatchListener,
  Watcher,
} from './store';

export interface EtcdStoreOptions {
  /** Client URLs, e.g. `http://10.0.0.1:2379`. */
  endpoints: string[];
  /** Every key lives under this prefix (e.g. `switchboard/`); results have it stripped. */
  prefix: string;
  logger?: Logger;
  /** How long open() waits for etcd to answer before failing with store_unavailable. */
  dialTimeoutMs?: number;
  /** Budget of one store call, retries included; past it the call fails with store_unavailable. */
  requestTimeoutMs?: number;
}

/**
 * The Store over etcd: store revision = etcd revision, so every registry process over one
 * cluster reports the same `X-Consul-Index`. etcd is the Raft engine; this file only maps
 * the Store contract onto etcd's KV, Txn and Watch calls.
 *
 * Every call is bounded (see EtcdConnection.call): while etcd has no quorum, calls fail
 * with `store_unavailable` (the API answers 503) and work again once it recovers.
 */
export class EtcdStore implements Store {
  readonly kind = 'etcd';
  private readonly conn: EtcdConnection;
  private readonly prefix: Buffer;
  private readonly watchers = new Set<EtcdPrefixWatch>();
  private readonly dialTimeoutMs: number;

  constructor(private readonly options: EtcdStoreOptions) {
    this.conn = new EtcdConnection(options.endpoints, options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    this.prefix = Buffer.from(options.prefix, 'utf8');
    this.dialTimeoutMs = options.dialTimeoutMs ?? this.conn.requestTimeoutMs;
  }

  /** Fails with store_unavailable unless etcd answers (a linearizable read needs quorum). */
  async open(): Promise<void> {
    await this.conn.call(
      'open',
      ({ deadline }) =>
        this.conn.client.kv.range(
          { key: rangeStart(this.prefix), range_end: prefixRangeEnd(this.prefix), count_only: true },
          { deadline },
        ),
      this.dialTimeoutMs,
    );
    this.options.logger?.info({ endpoints: this.options.endpoints, prefix: this.options.prefix }, 'etcd store open');
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.close();
    this.watchers.clear();
    this.conn.close();
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.conn.call('get', ({ deadline }) =>
      this.conn.client.kv.range({ key: this.fullKey(key) }, { deadline }),
    );
    return res.kvs.length > 0 ? this.toKeyValue(res.kvs[0]) : undefined;
  }

  /** One range read: every key is consistent at the header's revision. */
  async range(prefix: string): Promise<{ rev: number; kvs: KeyValue[] }> {
    const full = this.fullKey(prefix);
    const res = await this.conn.call('range', ({ deadline }) =>
      this.conn.client.kv.range({ key: rangeStart(full), range_end: prefixRangeEnd(full) }, { deadline }),
    );
    return { rev: toNumber(res.header.revision), kvs: res.kvs.map((kv) => this.toKeyValue(kv)) };
  }

  async txn(compares: TxnCompare[], ops: TxnOp[]): Promise<TxnResult> {
    const request = { compare: compares.map((c) => this.toCompare(c)), success: this.toRequestOps(ops) };
    const res = await this.conn.call('txn', ({ deadline }) => this.conn.client.kv.txn(request, { deadline }));
    return { ok: res.succeeded, rev: toNumber(res.header.revision) };
  }

  watch(prefix: string, afterRev: number, listener: WatchListener): Watcher {
    const stripped = (ev: IEvent) => this.toWatchEvent(ev);
    const watch = new EtcdPrefixWatch(
      this.conn,
      this.fullKey(prefix),
      afterRev,
      {
        onRevision: (rev, events) => listener.onBatch({ rev, events: events.map(stripped) }),
        onCompacted: (compactRev) => {
          this.watchers.delete(watch);
          listener.onCompacted(compactRev);
        },
        onError: (err) => listener.onError?.(err as Error),
      },
      this.options.logger,
    );
    this.watchers.add(watch);
    return {
      close: () => {
        watch.close();
        this.watchers.delete(watch);
      },
    };
  }

  private fullKey(key: string): Buffer {
    return Buffer.concat([this.prefix, Buffer.from(key, 'utf8')]);
  }

  private stripKey(key: Buffer): string {
    return key.subarray(this.prefix.length).toString('utf8');
  }

  private toKeyValue(kv: IKeyValue): KeyValue {
    return {
      key: this.stripKey(kv.key),
      value: kv.value.toString('utf8'),
      createRev: toNumber(kv.create_revision),
      modRev: toNumber(kv.mod_revision),
    };
  }

  /** modRev 0 means "absent": etcd compares a missing key as create_revision 0. */
  private toCompare(c: TxnCompare): ICompare {
    const key = this.fullKey(c.key);
    return c.modRev === 0
      ? { key, target: 'Create', result: 'Equal', create_revision: 0 }
      : { key, target: 'Mod', result: 'Equal', mod_revision: c.modRev };
  }

  /**
   * etcd refuses a txn that touches one key twice; applying ops in order means the last op
   * on a key decides its final state, so keep only that one.
   */
  private toRequestOps(ops: TxnOp[]): IRequestOp[] {
    const last = new Map<string, TxnOp>();
    for (const op of ops) {
      last.delete(op.key);
      last.set(op.key, op);
    }
    return [...last.values()].map((op) =>
      op.kind === 'put'
        ? { request_put: { key: this.fullKey(op.key), value: Buffer.from(op.value, 'utf8') } }
        : { request_delete_range: { key: this.fullKey(op.key) } },
    );
  }

  private toWatchEvent(ev: IEvent): WatchEvent {
    const prev = ev.prev_kv ?? undefined;
    const isDelete = String(ev.type).toUpperCase() === 'DELETE';
    return {
      type: isDelete ? 'delete' : 'put',
      key: this.stripKey(ev.kv.key),
      value: isDelete ? undefined : ev.kv.value.toString('utf8'),
      prevValue: prev ? prev.value.toString('utf8') : undefined,
      modRev: toNumber(ev.kv.mod_revision),
      // A delete event's kv carries no create revision; the previous kv does.
      createRev: isDelete ? toNumber(prev?.create_revision) : toNumber(ev.kv.create_revision),
    };
  }
}
