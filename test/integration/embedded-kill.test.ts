import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EmbeddedStore } from '../../src/registry/store/embedded-store';

const WRITER = path.join(__dirname, '..', 'helpers', 'journal-writer.js');
/** Small, so the kill can also land in the middle of a compaction. */
const COMPACT_EVERY = '40';
const ACKS_BEFORE_KILL = 250;
const WAIT_MS = 30_000;

interface Ack {
  rev: number;
  key: string;
}

/** Runs the writer until it has acknowledged `count` txns, kills it with SIGKILL, returns the acks it printed. */
async function writeThenKill(dataDir: string, keyPrefix: string, count: number, children: Set<ChildProcess>): Promise<Ack[]> {
  const child = spawn(process.execPath, [WRITER, dataDir, keyPrefix, COMPACT_EVERY], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const exited = once(child, 'exit');
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`writer printed too few acks in ${WAIT_MS} ms`)), WAIT_MS);
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (countAcks(stdout) >= count) finish();
    });
    child.on('exit', (code) => finish(new Error(`writer exited early (code ${code}): ${stderr}`)));
  });
  child.kill('SIGKILL');
  const [, signal] = await exited; // reaped: its pid in the lock file is now dead
  children.delete(child);
  assert.equal(signal, 'SIGKILL');
  return parseAcks(stdout);
}

function countAcks(out: string): number {
  return out.split('\n').filter((l) => l.startsWith('ack ')).length;
}

/** Complete lines only: the kill may cut the last one. */
function parseAcks(out: string): Ack[] {
  const lines = out.split('\n').slice(0, -1);
  return lines.filter((l) => l.startsWith('ack ')).map((l) => {
    const [, rev, key] = l.split(' ');
    return { rev: Number(rev), key };
  });
}

async function assertAllPresent(dataDir: string, acks: Ack[]): Promise<void> {
  const store = new EmbeddedStore({ dataDir });
  await store.open();
  try {
    for (const ack of acks) {
      const kv = await store.get(ack.key);
      assert.ok(kv, `acknowledged ${ack.key} at rev ${ack.rev} is missing`);
      assert.equal(kv.modRev, ack.rev);
    }
    // Every txn created one key, so a hole in the revision sequence shows up as a missing key.
    const { rev, kvs } = await store.range('');
    assert.equal(kvs.length, rev);
  } finally {
    await store.close();
  }
}

describe('EmbeddedStore under kill -9', () => {
  let dataDir: string;
  const children = new Set<ChildProcess>();

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'switchboard-kill-'));
  });
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps every acknowledged write across two kills in the middle of a write stream', async () => {
    const first = await writeThenKill(dataDir, 'a-', ACKS_BEFORE_KILL, children);
    await assertAllPresent(dataDir, first);
    const second = await writeThenKill(dataDir, 'b-', ACKS_BEFORE_KILL, children);
    assert.ok(Math.min(...second.map((a) => a.rev)) > Math.max(...first.map((a) => a.rev)), 'revision went backwards');
    await assertAllPresent(dataDir, [...first, ...second]);
  });
});
