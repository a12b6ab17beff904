import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { isSwitchboardError } from '../../src/errors';
import { EtcdStore } from '../../src/registry/store/etcd-store';
import type { Store, WatchBatch } from '../../src/registry/store/store';
import { waitFor } from '../helpers/child';
import { startEtcd, startEtcdCluster, type EtcdHandle } from '../helpers/etcd';

const opts = { timeout: 30_000 };
const handles: { stop(): Promise<void> }[] = [];
after(async () => {
  await Promise.all(handles.map((h) => h.stop()));
});

async function started<T extends { stop(): Promise<void> }>(thing: Promise<T>): Promise<T> {
  const value = await thing;
  handles.push(value);
  return value;
}

function openStore(etcd: EtcdHandle, requestTimeoutMs = 5000): EtcdStore {
  const store = new EtcdStore({ endpoints: etcd.endpoints, prefix: `it/${randomUUID()}/`, requestTimeoutMs });
  handles.push({ stop: () => store.close() });
  return store;
}

async function put(store: Store, key: string, value: string): Promise<number> {
  const result = await store.txn([], [{ kind: 'put', key, value }]);
  assert.equal(result.ok, true);
  return result.rev;
}

describe('etcd store against a real etcd', () => {
  it('a watch from a compacted revision reports the compaction and never retries it', opts, async () => {
    const etcd = await started(startEtcd());
    const store = openStore(etcd);
    await store.open();
    const start = (await store.range('')).rev;
    for (let i = 0; i < 5; i++) await put(store, `k${i}`, String(i));
    const compactAt = (await store.range('')).rev;
    const admin = new Etcd3({ hosts: etcd.endpoints });
    try {
      await admin.kv.compact({ revision: compactAt, physical: true });
    } finally {
      admin.close();
    }

    const batches: WatchBatch[] = [];
    const compactions: number[] = [];
    const watcher = store.watch('', start, {
      onBatch: (b) => batches.push(b),
      onCompacted: (rev) => compactions.push(rev),
    });
    try {
      await waitFor('onCompacted', () => compactions.length > 0);
      assert.deepEqual(compactions, [compactAt]);
      // The caller's recovery: re-list, then watch from the listing's revision.
      const listed = await store.range('');
      assert.equal(listed.kvs.length, 5);
      const resumed: WatchBatch[] = [];
      const next = store.watch('', listed.rev, { onBatch: (b) => resumed.push(b), onCompacted: (r) => compactions.push(r) });
      try {
        const rev = await put(store, 'after', 'x');
        await waitFor('the resumed watch', () => resumed.length > 0);
        assert.deepEqual(resumed.map((b) => b.rev), [rev]);
      } finally {
        next.close();
      }
      assert.deepEqual(batches, [], 'the compacted watch must not deliver anything');
      assert.deepEqual(compactions, [compactAt], 'the compacted watch must not be retried');
    } finally {
      watcher.close();
    }
  });

  it('killing the Raft leader member: writes resume on the others and no acknowledged write is lost', opts, async () => {
    const cluster = await started(startEtcdCluster(3));
    const store = openStore(cluster);
    await store.open();
    const start = (await store.range('')).rev;
    const seen: number[] = [];
    const compactions: number[] = [];
    const watcher = store.watch('', start, { onBatch: (b) => seen.push(b.rev), onCompacted: (r) => compactions.push(r) });
    const writer = new SequentialWriter(store);
    const running = writer.run();
    try {
      await waitFor('writes before the kill', () => writer.acked.size >= 20);
      await cluster.members[await cluster.leaderIndex()].kill('SIGKILL');
      const ackedAtKill = writer.acked.size;
      await waitFor('writes after the kill', () => writer.acked.size >= ackedAtKill + 20, 20_000);
    } finally {
      writer.stop();
      await running;
    }
    try {
      assert.deepEqual(writer.unexpected, [], 'only store_unavailable may surface during failover');
      const stored = new Map((await store.range('')).kvs.map((kv) => [kv.key, kv.modRev]));
      for (const [key, rev] of writer.acked) assert.equal(stored.get(key), rev, `acknowledged ${key}@${rev} lost`);
      // The change feed, reconnected if its member died, delivered every acknowledged revision in order.
      assert.deepEqual(compactions, []);
      const lastRev = Math.max(...writer.acked.values());
      await waitFor('the watch to catch up', () => seen.includes(lastRev));
      assert.deepEqual([...seen].sort((a, b) => a - b), seen, 'revisions out of order');
      for (const rev of writer.acked.values()) assert.ok(seen.includes(rev), `watch missed revision ${rev}`);
    } finally {
      watcher.close();
    }
  });

  it('without quorum, calls fail with store_unavailable instead of hanging, and work again after recovery', opts, async () => {
    const cluster = await started(startEtcdCluster(3));
    const store = openStore(cluster, 1500);
    await store.open();
    await put(store, 'before', '1');
    await Promise.all([cluster.members[1].kill(), cluster.members[2].kill()]);

    for (const call of [() => put(store, 'during', '1'), () => store.range(''), () => store.get('before')]) {
      await assert.rejects(call(), (err: unknown) => {
        assert.ok(isSwitchboardError(err, 'store_unavailable'), `expected store_unavailable, got ${String(err)}`);
        assert.ok(err.cause !== undefined, 'the etcd error is attached as cause');
        return true;
      });
    }

    await Promise.all([cluster.members[1].restart(), cluster.members[2].restart()]);
    await waitFor('writes to work again', async () => (await store.txn([], [{ kind: 'put', key: 'after', value: '1' }])).ok, 20_000);
    assert.equal((await store.get('before'))?.value, '1');
  });
});

/** Writes k0, k1, … one at a time; a failed write is retried under the same key. */
class SequentialWriter {
  /** key → revision etcd acknowledged. */
  readonly acked = new Map<string, number>();
  readonly unexpected: unknown[] = [];
  private stopped = false;

  constructor(private readonly store: Store) {}

  async run(): Promise<void> {
    let i = 0;
    while (!this.stopped) {
      const key = `k${i}`;
      try {
        const result = await this.store.txn([], [{ kind: 'put', key, value: String(i) }]);
        if (result.ok) this.acked.set(key, result.rev);
        i++;
      } catch (err) {
        if (!isSwitchboardError(err, 'store_unavailable')) this.unexpected.push(err);
      }
    }
  }

  stop(): void {
    this.stopped = true;
  }
}
