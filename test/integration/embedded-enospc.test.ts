/**
 * The embedded store on a full disk (a 256 KiB tmpfs): writes are refused with 507
 * insufficient_storage, reads go on, the store says it is not writable; once space is freed the
 * next write goes through without a restart, and everything acknowledged survives a reopen.
 * Needs root to mount the tmpfs; skipped, with the reason, where it cannot.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalBus } from '../../src/bus/local-bus';
import { silentLogger } from '../../src/log';
import { Registry } from '../../src/registry/registry';
import { EmbeddedStore } from '../../src/registry/store/embedded-store';
import { registrySettings } from '../helpers/registry-fixtures';

function mountTmpfs(dir: string): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs';
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs here: ${(err as Error).message.split('\n')[0]}`;
  }
}

const mountPoint = mkdtempSync(path.join(tmpdir(), 'switchboard-enospc-'));
const skip = mountTmpfs(mountPoint);

describe('embedded store on a full disk', { skip }, () => {
  const dataDir = path.join(mountPoint, 'data');
  const filler = path.join(mountPoint, 'filler');
  let store: EmbeddedStore;
  let registry: Registry;
  let base = '';
  const acknowledged: string[] = [];

  before(async () => {
    // Room to free later: a filler file of a third of the disk.
    writeFileSync(filler, Buffer.alloc(80 * 1024, 1));
    store = new EmbeddedStore({ dataDir, logger: silentLogger() });
    await store.open();
    registry = new Registry({ store, bus: new LocalBus(), logger: silentLogger(), ...registrySettings() });
    await registry.start();
    base = `http://${registry.address}`;
  });

  after(async () => {
    await registry?.stop();
    await store?.close();
    try {
      execFileSync('umount', [mountPoint], { stdio: 'pipe' });
    } finally {
      rmSync(mountPoint, { recursive: true, force: true });
    }
  });

  const register = (id: string) =>
    fetch(`${base}/v1/agent/service/register`, {
      method: 'PUT',
      // ~16 KiB of Meta per registration fills 256 KiB quickly.
      body: JSON.stringify({ Name: 'big', ID: id, Port: 80, Meta: Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, 'x'.repeat(500)])) }),
    });

  it('refuses writes with 507 once the disk is full, and keeps serving reads', async () => {
    let full: Response | undefined;
    for (let i = 0; i < 100 && full === undefined; i++) {
      const reply = await register(`big-${i}`);
      if (reply.status === 200) acknowledged.push(`big-${i}`);
      else full = reply;
    }
    assert.ok(full, 'the disk filled up');
    assert.equal(full.status, 507);
    assert.equal(((await full.json()) as { error: string }).error, 'insufficient_storage');
    assert.equal(store.writable, false);
    const read = await fetch(`${base}/v1/catalog/service/big`);
    assert.equal(read.status, 200);
    assert.equal(((await read.json()) as unknown[]).length, acknowledged.length);
  });

  it('accepts writes again by itself once space is freed', async () => {
    unlinkSync(filler);
    const reply = await register('after-space');
    assert.equal(reply.status, 200);
    acknowledged.push('after-space');
    assert.equal(store.writable, true);
  });

  it('every acknowledged write survives a reopen (the journal stayed contiguous)', async () => {
    await registry.stop();
    await store.close();
    store = new EmbeddedStore({ dataDir, logger: silentLogger() });
    await store.open();
    const { kvs } = await store.range('instances/');
    assert.deepEqual(kvs.map((kv) => kv.key.slice('instances/'.length)).sort(), [...acknowledged].sort());
    registry = new Registry({ store, bus: new LocalBus(), logger: silentLogger(), ...registrySettings() });
    await registry.start();
  });
});
