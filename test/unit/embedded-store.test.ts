import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isSwitchboardError } from '../../src/errors';
import { createLogger, type Logger } from '../../src/log';
import { LOCK_FILE } from '../../src/registry/store/data-dir-lock';
import { EmbeddedStore } from '../../src/registry/store/embedded-store';
import { encodeFrame, JOURNAL_FILE, scanJournal, SNAPSHOT_FILE, writeSnapshot } from '../../src/registry/store/journal';

let dir: string;
const openStores: EmbeddedStore[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'switchboard-embedded-'));
});

afterEach(async () => {
  for (const store of openStores.splice(0)) await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function openStore(options: { compactEvery?: number; logger?: Logger } = {}): Promise<EmbeddedStore> {
  const store = new EmbeddedStore({ dataDir: dir, ...options });
  await store.open();
  openStores.push(store);
  return store;
}

async function closeStore(store: EmbeddedStore): Promise<void> {
  openStores.splice(openStores.indexOf(store), 1);
  await store.close();
}

/** Writes key-1..key-n, one txn each; returns the revision of the last. */
async function writeKeys(store: EmbeddedStore, n: number, from = 1): Promise<number> {
  let rev = 0;
  for (let i = from; i < from + n; i++) rev = (await store.txn([], [{ kind: 'put', key: `key-${i}`, value: `v${i}` }])).rev;
  return rev;
}

function journalPath(): string {
  return path.join(dir, JOURNAL_FILE);
}

/** Sealed journal segments left in the data dir. */
async function sealedFiles(): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.startsWith(`${JOURNAL_FILE}.`));
}

function captureLogger(): { logger: Logger; lines: () => Array<{ level: number; msg: string }> } {
  const out: string[] = [];
  const logger = createLogger('warn', { write: (line: string) => void out.push(line) });
  return { logger, lines: () => out.map((l) => JSON.parse(l)) };
}

async function rejectsWithCode(promise: Promise<unknown>, code: 'journal_corrupt' | 'data_dir_locked'): Promise<Error> {
  const err = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(isSwitchboardError(err, code), `expected ${code}, got ${String(err)}`);
  return err;
}

describe('EmbeddedStore durability', () => {
  it('restores keys, revisions and the revision counter after reopening', async () => {
    const first = await openStore();
    await writeKeys(first, 3);
    await first.txn([], [{ kind: 'delete', key: 'key-2' }, { kind: 'put', key: 'key-1', value: 'changed' }]);
    const before = await first.range('');
    await closeStore(first);

    const second = await openStore();
    assert.deepEqual(await second.range(''), before);
    assert.equal((await second.txn([], [{ kind: 'put', key: 'next', value: 'x' }])).rev, before.rev + 1);
  });

  it('makes a write visible to readers only once its journal record is durable', async () => {
    const store = await openStore();
    const pending = store.txn([], [{ kind: 'put', key: 'k', value: 'v' }]);
    // fdatasync completes on the thread pool, so it cannot finish within these microtasks.
    assert.equal(await store.get('k'), undefined);
    const { rev } = await pending;
    assert.equal((await store.get('k'))?.modRev, rev);
  });

  it('gives txns submitted together consecutive revisions in call order', async () => {
    const store = await openStore();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.txn([], [{ kind: 'put', key: `k${i}`, value: String(i) }])),
    );
    assert.deepEqual(
      results.map((r) => r.rev),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
  });

  it('compaction seals the journal, snapshots that revision in the background and deletes what the snapshot covers', async () => {
    const store = await openStore({ compactEvery: 5 });
    await writeKeys(store, 4);
    await closeStore(store); // close waits for the drain, so file sizes are settled
    const before = (await stat(journalPath())).size;

    const again = await openStore({ compactEvery: 5 });
    assert.equal(await writeKeys(again, 1, 5), 5, 'the 5th record since the last snapshot seals the journal');
    await writeKeys(again, 2, 6); // revs 6, 7 go to the new journal, whatever the snapshot is doing
    await again.compactionSettled();
    assert.deepEqual(await sealedFiles(), [], 'the sealed segment the snapshot covers is deleted');
    assert.deepEqual(
      scanJournal(await readFile(journalPath()), journalPath()).records.map((r) => r.rev),
      [6, 7],
    );
    assert.ok((await stat(journalPath())).size < before, 'journal did not shrink');
    await closeStore(again);

    const reopened = await openStore({ compactEvery: 5 });
    const { rev, kvs } = await reopened.range('key-');
    assert.equal(rev, 7);
    assert.equal(kvs.length, 7);
    assert.equal((await reopened.get('key-7'))?.value, 'v7');
  });

  it('restarts at the snapshot revision when compaction left the journal empty', async () => {
    const store = await openStore({ compactEvery: 5 });
    await writeKeys(store, 5);
    await closeStore(store); // waits for the background snapshot too
    assert.equal((await stat(journalPath())).size, 0);
    assert.deepEqual(await sealedFiles(), []);

    const reopened = await openStore({ compactEvery: 5 });
    assert.equal((await reopened.range('')).rev, 5);
    assert.equal((await reopened.txn([], [{ kind: 'put', key: 'after', value: 'x' }])).rev, 6);
  });

  it('replays sealed segments after an older snapshot, as a crash in the middle of a compaction leaves them', async () => {
    // The state a crash leaves: the snapshot of rev 2, the journal sealed at rev 4 (its
    // snapshot never finished), and a journal that went on.
    const record = (rev: number): Buffer => encodeFrame({ rev, ops: [{ kind: 'put', key: `key-${rev}`, value: `v${rev}` }] });
    await writeSnapshot(dir, { rev: 2, kvs: [1, 2].map((rev) => ({ key: `key-${rev}`, value: `v${rev}`, createRev: rev, modRev: rev })) });
    await writeFile(path.join(dir, `${JOURNAL_FILE}.${'4'.padStart(16, '0')}`), Buffer.concat([record(1), record(2), record(3), record(4)]));
    await writeFile(journalPath(), Buffer.concat([record(5), record(6)]));
    const store = await openStore();
    const { rev, kvs } = await store.range('key-');
    assert.equal(rev, 6);
    assert.deepEqual(
      kvs.map((kv) => kv.value),
      ['v1', 'v2', 'v3', 'v4', 'v5', 'v6'],
    );
    await closeStore(store);

    // A sealed segment with damage in it is corruption (it was synced whole), never a torn tail.
    const sealed = path.join(dir, `${JOURNAL_FILE}.${'4'.padStart(16, '0')}`);
    await writeFile(sealed, Buffer.concat([record(3), record(4).subarray(0, 10)]));
    await rejectsWithCode(new EmbeddedStore({ dataDir: dir }).open(), 'journal_corrupt');
  });

  it('waits for the journal to reach half the snapshot before rewriting a large one', async () => {
    const big = 'x'.repeat(1024);
    const store = await openStore({ compactEvery: 300 });
    for (let i = 0; i < 300; i++) await store.txn([], [{ kind: 'put', key: `big-${i}`, value: big }]);
    await closeStore(store);
    const snapshotBytes = (await stat(path.join(dir, SNAPSHOT_FILE))).size;
    assert.ok(snapshotBytes > 300 * 1024);

    const again = await openStore({ compactEvery: 1 });
    await writeKeys(again, 50); // ~3 KB of journal: far from half of ~320 KB
    await again.compactionSettled();
    assert.equal(scanJournal(await readFile(journalPath()), journalPath()).records.length, 50, 'no compaction yet');
    assert.equal((await stat(path.join(dir, SNAPSHOT_FILE))).size, snapshotBytes);
    await again.txn([], [{ kind: 'put', key: 'large', value: 'y'.repeat(snapshotBytes / 2) }]);
    await again.compactionSettled();
    assert.equal((await stat(journalPath())).size, 0, 'the journal past half the snapshot was compacted');
    await closeStore(again);
  });

  it('writes a snapshot in chunks, and refuses one cut short instead of loading part of it', async () => {
    const kvs = Array.from({ length: 2500 }, (_, i) => ({ key: `k-${i}`, value: `v${i}`, createRev: i + 1, modRev: i + 1 }));
    await writeSnapshot(dir, { rev: 2500, kvs });
    const file = path.join(dir, SNAPSHOT_FILE);
    const bytes = await readFile(file);
    const store = await openStore();
    assert.equal((await store.range('k-')).kvs.length, 2500);
    assert.equal((await store.range('')).rev, 2500);
    await closeStore(store);

    // Cut after the first chunk: the end frame is missing.
    const firstFrameEnd = 8 + bytes.readUInt32BE(0);
    await writeFile(file, bytes.subarray(0, firstFrameEnd));
    await rejectsWithCode(new EmbeddedStore({ dataDir: dir }).open(), 'journal_corrupt');

    // The format before chunking (one frame, no end frame) still loads.
    await writeFile(file, encodeFrame({ rev: 3, kvs: kvs.slice(0, 3) }));
    const legacy = await openStore();
    assert.equal((await legacy.range('k-')).kvs.length, 3);
  });

  const unacknowledged = (): Buffer => encodeFrame({ rev: 4, ops: [{ kind: 'put', key: 'lost', value: 'x' }] });
  const tornTails: Array<{ name: string; tail: () => Buffer }> = [
    { name: 'half-written record', tail: () => unacknowledged().subarray(0, 13) },
    { name: 'record with a bad checksum', tail: () => flipLastByte(unacknowledged()) },
    { name: 'zero-filled tail', tail: () => Buffer.alloc(64) },
  ];
  for (const { name, tail } of tornTails) {
    it(`drops a torn last record (${name}) with a warning and loads the rest`, async () => {
      const store = await openStore();
      await writeKeys(store, 3);
      await closeStore(store);
      const goodSize = (await stat(journalPath())).size;
      await appendFile(journalPath(), tail());

      const { logger, lines } = captureLogger();
      const reopened = await openStore({ logger });
      assert.ok(lines().some((l) => l.level === 40 && /torn/.test(l.msg)), 'no warning logged');
      assert.equal((await stat(journalPath())).size, goodSize, 'torn tail not truncated');
      const { rev, kvs } = await reopened.range('');
      assert.equal(rev, 3);
      assert.deepEqual(
        kvs.map((kv) => kv.key),
        ['key-1', 'key-2', 'key-3'],
      );
      assert.equal((await reopened.txn([], [{ kind: 'put', key: 'key-4', value: 'v4' }])).rev, 4);
    });
  }

  it('refuses to load a journal with a corrupt record in the middle, naming file and offset', async () => {
    const store = await openStore();
    await writeKeys(store, 3);
    await closeStore(store);
    const bytes = await readFile(journalPath());
    const secondRecordAt = encodeFrame({ rev: 1, ops: [{ kind: 'put', key: 'key-1', value: 'v1' }] }).length;
    bytes[secondRecordAt + 12] ^= 0xff; // inside the second record's payload
    await writeFile(journalPath(), bytes);

    const err = await rejectsWithCode(new EmbeddedStore({ dataDir: dir }).open(), 'journal_corrupt');
    assert.match(err.message, new RegExp(`${journalPath()}.*offset ${secondRecordAt}\\b`));
    assert.equal((await stat(journalPath())).size, bytes.length, 'acknowledged records were cut');
    await assert.rejects(stat(path.join(dir, LOCK_FILE)), { code: 'ENOENT' }, 'failed open kept the lock');
  });

  it('refuses a corrupt snapshot', async () => {
    const store = await openStore({ compactEvery: 2 });
    await writeKeys(store, 2);
    await closeStore(store);
    const snapshotPath = path.join(dir, SNAPSHOT_FILE);
    await writeFile(snapshotPath, flipLastByte(await readFile(snapshotPath)));
    await rejectsWithCode(new EmbeddedStore({ dataDir: dir }).open(), 'journal_corrupt');
  });
});

describe('EmbeddedStore data dir lock', () => {
  it('refuses a second open of a data dir in use, and allows it once closed', async () => {
    const first = await openStore();
    const err = await rejectsWithCode(new EmbeddedStore({ dataDir: dir }).open(), 'data_dir_locked');
    assert.match(err.message, new RegExp(`in use by pid ${process.pid}$`));
    await closeStore(first);
    await assert.rejects(stat(path.join(dir, LOCK_FILE)), { code: 'ENOENT' });
    await openStore();
  });

  it('takes over a lock left by a dead process', async () => {
    const child = spawn(process.execPath, ['-e', '']);
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    await writeFile(path.join(dir, LOCK_FILE), `${child.pid}\n`);

    const store = await openStore();
    assert.equal((await readFile(path.join(dir, LOCK_FILE), 'utf8')).trim(), String(process.pid));
    await store.txn([], [{ kind: 'put', key: 'k', value: 'v' }]);
  });
});

function flipLastByte(buf: Buffer): Buffer {
  const copy = Buffer.from(buf);
  copy[copy.length - 1] ^= 0xff;
  return copy;
}
