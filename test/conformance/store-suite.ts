import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Store, TxnOp, WatchBatch, WatchEvent, Watcher } from '../../src/registry/store/store';

/**
 * The Store contract (src/registry/store/store.ts), run against every implementation.
 *
 * Uses only the Store interface. `makeStore` returns an OPENED store; `cleanup` closes it and
 * removes whatever it made. The store may already hold keys and its revision need not start
 * at 0 (etcd), so every test works under its own fresh key prefix and measures revisions
 * relative to a range read. Tests run one after another and assume nobody else writes to the
 * store while one runs (revision arithmetic depends on it).
 */
export function runStoreConformance(
  name: string,
  makeStore: () => Promise<{ store: Store; cleanup: () => Promise<void> }>,
): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    let cleanup: (() => Promise<void>) | undefined;
    const runPrefix = `conformance/${randomUUID()}/`;
    let testNo = 0;
    const freshPrefix = (): string => `${runPrefix}${++testNo}/`;
    const opts = { timeout: 20_000 };

    before(async () => {
      ({ store, cleanup } = await makeStore());
    });
    after(async () => {
      await cleanup?.();
    });

    it('get returns the same key-values as a range read, which includes the txn revision', opts, async () => {
      const p = freshPrefix();
      const { rev } = await ok(store, [], [put(`${p}a`, '1'), put(`${p}b`, '2')]);
      const read = await store.range(p);
      assert.ok(read.rev >= rev, `range rev ${read.rev} is older than the write at ${rev}`);
      assert.deepEqual(pick(read.kvs), [kvAt(`${p}a`, '1', rev, rev), kvAt(`${p}b`, '2', rev, rev)]);
      for (const kv of read.kvs) assert.deepEqual(pick([(await store.get(kv.key))!]), pick([kv]));
      assert.equal(await store.get(`${p}missing`), undefined);
    });

    it('range returns only keys under the prefix, sorted by key', opts, async () => {
      const p = freshPrefix();
      for (const key of ['m/2', 'c', 'm/10', 'a', 'm/1', 'z']) await ok(store, [], [put(`${p}${key}`, key)]);
      await ok(store, [], [put(`${p.slice(0, -1)}-sibling`, 'outside')]);
      const all = await store.range(p);
      assert.deepEqual(
        all.kvs.map((kv) => kv.key),
        ['a', 'c', 'm/1', 'm/10', 'm/2', 'z'].map((k) => p + k),
      );
      const sub = await store.range(`${p}m/`);
      assert.deepEqual(
        sub.kvs.map((kv) => kv.value),
        ['m/1', 'm/10', 'm/2'],
      );
    });

    it('every successful txn raises the revision by exactly one', opts, async () => {
      const p = freshPrefix();
      const start = (await store.range(p)).rev;
      const r1 = (await ok(store, [], [put(`${p}a`, '1')])).rev;
      const r2 = (await ok(store, [], [put(`${p}a`, '2'), put(`${p}b`, '1'), put(`${p}c`, '1')])).rev;
      const r3 = (await ok(store, [], [{ kind: 'delete', key: `${p}b` }])).rev;
      assert.deepEqual([r1, r2, r3], [start + 1, start + 2, start + 3]);
      assert.equal((await store.range(p)).rev, r3);
    });

    it('a compare with modRev 0 holds only while the key is absent', opts, async () => {
      const p = freshPrefix();
      const first = await store.txn([{ key: `${p}k`, modRev: 0 }], [put(`${p}k`, 'first')]);
      assert.equal(first.ok, true);
      const second = await store.txn([{ key: `${p}k`, modRev: 0 }], [put(`${p}k`, 'second')]);
      assert.deepEqual({ ok: second.ok, rev: second.rev }, { ok: false, rev: first.rev });
      assert.equal((await store.get(`${p}k`))?.value, 'first');
    });

    it('a failed compare writes none of the ops and reports the current revision', opts, async () => {
      const p = freshPrefix();
      const { rev } = await ok(store, [], [put(`${p}k`, 'v1')]);
      await ok(store, [], [put(`${p}k`, 'v2')]);
      const current = (await store.range(p)).rev;
      const stale = await store.txn(
        [{ key: `${p}k`, modRev: rev }],
        [put(`${p}k`, 'v3'), put(`${p}other`, 'x'), { kind: 'delete', key: `${p}k` }],
      );
      assert.deepEqual({ ok: stale.ok, rev: stale.rev }, { ok: false, rev: current });
      const after = await store.range(p);
      assert.equal(after.rev, current);
      assert.deepEqual(pick(after.kvs), [kvAt(`${p}k`, 'v2', rev, rev + 1)]);
    });

    it('all compares must hold: one mismatch among several refuses the txn', opts, async () => {
      const p = freshPrefix();
      const { rev } = await ok(store, [], [put(`${p}a`, '1'), put(`${p}b`, '1')]);
      const refused = await store.txn(
        [
          { key: `${p}a`, modRev: rev },
          { key: `${p}b`, modRev: rev + 100 },
        ],
        [put(`${p}a`, '2')],
      );
      assert.equal(refused.ok, false);
      const accepted = await store.txn(
        [
          { key: `${p}a`, modRev: rev },
          { key: `${p}b`, modRev: rev },
          { key: `${p}c`, modRev: 0 },
        ],
        [put(`${p}a`, '2')],
      );
      assert.deepEqual({ ok: accepted.ok, rev: accepted.rev }, { ok: true, rev: rev + 1 });
      assert.equal((await store.get(`${p}a`))?.value, '2');
    });

    it('a txn applies all its ops under one revision, seen by a watcher as one batch', opts, async () => {
      const p = freshPrefix();
      const { rev: base } = await ok(store, [], [put(`${p}old`, 'x')]);
      const w = watchCollect(store, p, base);
      try {
        const { rev } = await ok(store, [], [put(`${p}a`, '1'), put(`${p}b`, '2'), { kind: 'delete', key: `${p}old` }]);
        assert.deepEqual(
          pick((await store.range(p)).kvs),
          [kvAt(`${p}a`, '1', rev, rev), kvAt(`${p}b`, '2', rev, rev)],
        );
        await w.until((b) => b.length >= 1);
        assert.deepEqual(w.revs(), [rev]);
        assert.deepEqual(
          w.batches[0].events.map((e) => [e.type, e.key]),
          [
            ['put', `${p}a`],
            ['put', `${p}b`],
            ['delete', `${p}old`],
          ],
        );
      } finally {
        w.close();
      }
    });

    it('createRev is kept by updates and restarts when a deleted key is put again', opts, async () => {
      const p = freshPrefix();
      const k = `${p}k`;
      const r1 = (await ok(store, [], [put(k, 'v1')])).rev;
      assert.deepEqual(pick([(await store.get(k))!]), [kvAt(k, 'v1', r1, r1)]);
      const r2 = (await ok(store, [], [put(k, 'v2')])).rev;
      assert.deepEqual(pick([(await store.get(k))!]), [kvAt(k, 'v2', r1, r2)]);
      await ok(store, [], [{ kind: 'delete', key: k }]);
      assert.equal(await store.get(k), undefined);
      const r4 = (await ok(store, [], [put(k, 'v4')])).rev;
      assert.deepEqual(pick([(await store.get(k))!]), [kvAt(k, 'v4', r4, r4)]);
    });

    it('deleting an absent key inside a txn changes nothing for that key', opts, async () => {
      const p = freshPrefix();
      const start = (await store.range(p)).rev;
      const w = watchCollect(store, p, start);
      try {
        const { rev } = await ok(store, [], [put(`${p}a`, '1'), { kind: 'delete', key: `${p}absent` }]);
        assert.equal(rev, start + 1);
        assert.equal(await store.get(`${p}absent`), undefined);
        await w.until((b) => b.length >= 1);
        assert.deepEqual(w.batches[0].events.map((e) => [e.type, e.key]), [['put', `${p}a`]]);
      } finally {
        w.close();
      }
    });

    it('watch from a past revision replays later batches in order, then delivers live ones', opts, async () => {
      const p = freshPrefix();
      const start = (await store.range(p)).rev;
      const r1 = (await ok(store, [], [put(`${p}1`, 'a')])).rev;
      const r2 = (await ok(store, [], [put(`${p}2`, 'b')])).rev;
      const r3 = (await ok(store, [], [put(`${p}1`, 'c')])).rev;
      const fromStart = watchCollect(store, p, start);
      const fromMiddle = watchCollect(store, p, r2);
      try {
        await fromStart.until((b) => b.length >= 3);
        await fromMiddle.until((b) => b.length >= 1);
        const r4 = (await ok(store, [], [put(`${p}3`, 'd')])).rev;
        await fromStart.until((b) => b.length >= 4);
        await fromMiddle.until((b) => b.length >= 2);
        assert.deepEqual(fromStart.revs(), [r1, r2, r3, r4]);
        assert.deepEqual(fromMiddle.revs(), [r3, r4]);
        assert.deepEqual(
          fromStart.batches.map((b) => b.events.map((e) => [e.key, e.value])),
          [[[`${p}1`, 'a']], [[`${p}2`, 'b']], [[`${p}1`, 'c']], [[`${p}3`, 'd']]],
        );
      } finally {
        fromStart.close();
        fromMiddle.close();
      }
    });

    it('watch delivers only keys under its prefix', opts, async () => {
      const p = freshPrefix();
      const start = (await store.range(p)).rev;
      const w = watchCollect(store, `${p}in/`, start);
      try {
        await ok(store, [], [put(`${p}out/1`, 'x')]);
        await ok(store, [], [put(`${p}in/1`, 'y'), put(`${p}inx`, 'z')]);
        await ok(store, [], [put(`${p}out/2`, 'x')]);
        const { rev: last } = await ok(store, [], [put(`${p}in/2`, 'end')]);
        await w.until((b) => b.some((batch) => batch.rev === last));
        assert.deepEqual(
          w.batches.flatMap((b) => b.events.map((e) => e.key)),
          [`${p}in/1`, `${p}in/2`],
        );
      } finally {
        w.close();
      }
    });

    it('watch events carry value, prevValue, createRev and modRev', opts, async () => {
      const p = freshPrefix();
      const k = `${p}k`;
      const start = (await store.range(p)).rev;
      const w = watchCollect(store, p, start);
      try {
        const r1 = (await ok(store, [], [put(k, 'v1')])).rev;
        const r2 = (await ok(store, [], [put(k, 'v2')])).rev;
        const r3 = (await ok(store, [], [{ kind: 'delete', key: k }])).rev;
        await w.until((b) => b.length >= 3);
        assert.deepEqual(
          w.batches.map((b) => b.events.map(eventFields)),
          [
            [eventFields({ type: 'put', key: k, value: 'v1', modRev: r1, createRev: r1 })],
            [eventFields({ type: 'put', key: k, value: 'v2', prevValue: 'v1', modRev: r2, createRev: r1 })],
            [eventFields({ type: 'delete', key: k, prevValue: 'v2', modRev: r3, createRev: r1 })],
          ],
        );
      } finally {
        w.close();
      }
    });

    it('concurrent read-modify-write increments with compare-and-swap lose no update', opts, async () => {
      const p = freshPrefix();
      const counter = `${p}counter`;
      const workers = 16;
      const increment = async (): Promise<number> => {
        for (let attempt = 1; attempt <= 500; attempt++) {
          const kv = await store.get(counter);
          const next = String(Number(kv?.value ?? '0') + 1);
          const result = await store.txn([{ key: counter, modRev: kv?.modRev ?? 0 }], [put(counter, next)]);
          if (result.ok) return attempt;
        }
        throw new Error('increment: no success in 500 attempts');
      };
      await Promise.all(Array.from({ length: workers }, increment));
      assert.equal((await store.get(counter))?.value, String(workers));
    });
  });
}

// ---- helpers ----

function put(key: string, value: string): TxnOp {
  return { kind: 'put', key, value };
}

async function ok(store: Store, compares: { key: string; modRev: number }[], ops: TxnOp[]): Promise<{ rev: number }> {
  const result = await store.txn(compares, ops);
  assert.equal(result.ok, true, `txn unexpectedly refused: ${JSON.stringify(ops)}`);
  return result;
}

function kvAt(key: string, value: string, createRev: number, modRev: number): object {
  return { key, value, createRev, modRev };
}

/** Only the contract's fields, so an implementation may carry extras. */
function pick(kvs: { key: string; value: string; createRev: number; modRev: number }[]): object[] {
  return kvs.map(({ key, value, createRev, modRev }) => kvAt(key, value, createRev, modRev));
}

/** Optional fields normalised, so a missing field and an undefined one compare equal. */
function eventFields(e: WatchEvent): object {
  return { type: e.type, key: e.key, value: e.value, prevValue: e.prevValue, modRev: e.modRev, createRev: e.createRev };
}

interface Collector {
  batches: WatchBatch[];
  revs(): number[];
  until(done: (batches: WatchBatch[]) => boolean): Promise<void>;
  close(): void;
}

const WAIT_MS = 10_000;

/** Watch and keep every batch; `until` resolves when the condition holds, fails at a deadline. */
function watchCollect(store: Store, prefix: string, afterRev: number): Collector {
  const batches: WatchBatch[] = [];
  let problem: Error | undefined;
  let wake: () => void = () => undefined;
  const watcher: Watcher = store.watch(prefix, afterRev, {
    onBatch: (batch) => {
      batches.push(batch);
      wake();
    },
    onCompacted: (rev) => {
      problem = new Error(`watch from ${afterRev} unexpectedly compacted at ${rev}`);
      wake();
    },
  });
  const until = async (done: (b: WatchBatch[]) => boolean): Promise<void> => {
    const deadline = Date.now() + WAIT_MS;
    while (!done(batches)) {
      if (problem) throw problem;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`watch ${prefix}: condition not met; got revs ${JSON.stringify(batches.map((b) => b.rev))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  return { batches, revs: () => batches.map((b) => b.rev), until, close: () => watcher.close() };
}
