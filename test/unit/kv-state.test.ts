/**
 * The in-process store's watch history is bounded by bytes as well as by revisions: large
 * values (KV entries up to 512 KiB) must not keep gigabytes alive for watchers that may never
 * come. A watcher asking for trimmed history is told it was compacted, as etcd does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KvState } from '../../src/registry/store/kv-state';
import type { WatchBatch } from '../../src/registry/store/store';

function watchFrom(state: KvState, afterRev: number): Promise<{ batches: WatchBatch[]; compactedAt?: number }> {
  const seen: WatchBatch[] = [];
  return new Promise((resolve) => {
    const watcher = state.watch('', afterRev, {
      onBatch: (batch) => seen.push(batch),
      onCompacted: (compactRev) => resolve({ batches: seen, compactedAt: compactRev }),
    });
    queueMicrotask(() => queueMicrotask(() => {
      watcher.close();
      resolve({ batches: seen });
    }));
  });
}

describe('KvState history', () => {
  it('drops the oldest batches once their keys and values pass the byte limit', async () => {
    const state = new KvState(10_000, 100_000);
    const value = 'v'.repeat(10_000);
    for (let i = 1; i <= 50; i++) state.txn([], [{ kind: 'put', key: `big-${i}`, value }]);
    const old = await watchFrom(state, 0);
    assert.ok(old.compactedAt !== undefined && old.compactedAt > 30, `compacted at ${String(old.compactedAt)}`);
    // What is kept fits the limit, and a watcher within it replays every later batch in order.
    const recent = await watchFrom(state, 45);
    assert.equal(recent.compactedAt, undefined);
    assert.deepEqual(recent.batches.map((b) => b.rev), [46, 47, 48, 49, 50]);
  });

  it('keeps the newest batch whatever its size, and still bounds by count', async () => {
    const huge = new KvState(10_000, 1_000);
    huge.txn([], [{ kind: 'put', key: 'a', value: 'x'.repeat(5_000) }]);
    huge.txn([], [{ kind: 'put', key: 'b', value: 'y'.repeat(5_000) }]);
    assert.deepEqual((await watchFrom(huge, 1)).batches.map((b) => b.rev), [2]);
    const counted = new KvState(4);
    for (let i = 1; i <= 20; i++) counted.txn([], [{ kind: 'put', key: `k${i}`, value: 'v' }]);
    assert.ok((await watchFrom(counted, 0)).compactedAt !== undefined);
    assert.deepEqual((await watchFrom(counted, 16)).batches.map((b) => b.rev), [17, 18, 19, 20]);
  });
});
