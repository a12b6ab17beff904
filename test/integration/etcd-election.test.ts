import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { EtcdElection } from '../../src/registry/election/etcd-election';
import { waitFor } from '../helpers/child';
import { startEtcd, type EtcdHandle } from '../helpers/etcd';

const TTL_SECONDS = 2;
const TAKEOVER_WAIT_MS = 15_000;
const opts = { timeout: 30_000 };

let etcd: EtcdHandle;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
});

function candidate(prefix: string, address: string): EtcdElection {
  return new EtcdElection({ endpoints: etcd.endpoints, prefix, candidate: address, ttlSeconds: TTL_SECONDS });
}

/** Track every leadership edge one candidate reports. */
function edges(election: EtcdElection): boolean[] {
  const seen: boolean[] = [];
  election.onChange((leading) => seen.push(leading));
  return seen;
}

async function onlyLeader(elections: EtcdElection[], expected: EtcdElection, address: string): Promise<void> {
  await waitFor(`${address} to lead alone`, () => elections.every((e) => e.isLeader() === (e === expected)), TAKEOVER_WAIT_MS);
  await waitFor(`every candidate to name ${address}`, () => elections.every((e) => e.leader() === address), TAKEOVER_WAIT_MS);
}

describe('etcd election', () => {
  it('three candidates: one leads, all agree; stopping the leader hands over to the next', opts, async () => {
    const prefix = `el/${randomUUID()}/`;
    const [a, b, c] = ['a:1', 'b:2', 'c:3'].map((addr) => candidate(prefix, addr));
    const all = [a, b, c];
    const aEdges = edges(a);
    try {
      for (const e of all) await e.start();
      await onlyLeader(all, a, 'a:1');
      const firstToken = a.token();
      assert.ok(firstToken > 0);
      assert.equal(b.token(), 0, 'a follower holds no fencing token');

      await a.stop();
      assert.deepEqual(aEdges, [true, false]);
      await onlyLeader([b, c], b, 'b:2');
      assert.ok(b.token() > firstToken, 'the fencing token grows with each leader');
    } finally {
      await Promise.all(all.map((e) => e.stop()));
    }
  });

  it('a killed leader is replaced once its lease expires, with a larger token', opts, async (t) => {
    const prefix = `el/${randomUUID()}/`;
    const child = await startChildCandidate(prefix, 'dead:1');
    const [b, c] = ['b:2', 'c:3'].map((addr) => candidate(prefix, addr));
    try {
      await b.start();
      await c.start();
      await waitFor('followers to name the child leader', () => b.leader() === 'dead:1' && c.leader() === 'dead:1');
      assert.equal(b.isLeader() || c.isLeader(), false);
      const childToken = child.token;

      const killedAt = Date.now();
      child.process.kill('SIGKILL');
      await onlyLeader([b, c], b, 'b:2');
      t.diagnostic(`takeover after SIGKILL of the leader: ${Date.now() - killedAt} ms (lease TTL ${TTL_SECONDS} s)`);
      assert.ok(b.token() > childToken);
    } finally {
      child.process.kill('SIGKILL');
      await Promise.all([b.stop(), c.stop()]);
    }
  });

  it('a leader whose lease is revoked steps down and campaigns again with a new lease', opts, async () => {
    const prefix = `el/${randomUUID()}/`;
    const [a, b] = ['a:1', 'b:2'].map((addr) => candidate(prefix, addr));
    const aEdges = edges(a);
    const admin = new Etcd3({ hosts: etcd.endpoints });
    try {
      await a.start();
      await b.start();
      await onlyLeader([a, b], a, 'a:1');
      const leaderKey = await admin.getAll().prefix(`${prefix}election/`).sort('Create', 'Ascend').limit(1).exec();
      await admin.leaseClient.leaseRevoke({ ID: leaderKey.kvs[0].lease });

      await onlyLeader([a, b], b, 'b:2');
      assert.deepEqual(aEdges, [true, false]);
      await waitFor('a to stand again', async () => (await admin.getAll().prefix(`${prefix}election/`).keys()).length === 2);
      // b stepping down now hands leadership back to a's new candidacy.
      await b.stop();
      await onlyLeader([a], a, 'a:1');
      assert.deepEqual(aEdges, [true, false, true]);
    } finally {
      admin.close();
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

interface ChildCandidate {
  process: ChildProcess;
  token: number;
}

/** A candidate in its own process, so the test can SIGKILL it like a crashed registry. */
async function startChildCandidate(prefix: string, address: string): Promise<ChildCandidate> {
  const modulePath = path.join(__dirname, '../../src/registry/election/etcd-election.js');
  const script = `
    const { EtcdElection } = require(${JSON.stringify(modulePath)});
    const e = new EtcdElection(JSON.parse(process.argv[1]));
    e.onChange((leading) => console.log(JSON.stringify({ leading, token: e.token() })));
    e.start().catch((err) => { console.error(err); process.exit(1); });
    // Die with the test process: our stdin is a pipe from it.
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();`;
  const options = { endpoints: etcd.endpoints, prefix, candidate: address, ttlSeconds: TTL_SECONDS };
  const proc = spawn(process.execPath, ['-e', script, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const result: ChildCandidate = { process: proc, token: 0 };
  proc.stdout?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
      const msg = JSON.parse(line) as { leading: boolean; token: number };
      if (msg.leading) result.token = msg.token;
    }
  });
  try {
    await waitFor(`child candidate ${address} to lead`, () => result.token > 0);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  return result;
}
