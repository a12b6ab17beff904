/**
 * The election's fence against a real etcd: a leader's fenced store write succeeds; once its
 * lease is gone (revoked, as when it expires) the same write fails, and a follower's fence
 * never holds. This is what keeps a deposed leader from moving meta/published-rev.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { isSwitchboardError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { CatalogView } from '../../src/registry/catalog-view';
import { CatalogWriter } from '../../src/registry/catalog-writer';
import { decodeInstance } from '../../src/registry/instance-codec';
import { instanceKey, PUBLISHED_REV_KEY } from '../../src/registry/keys';
import { EtcdElection } from '../../src/registry/election/etcd-election';
import type { Election } from '../../src/registry/election/election';
import { EtcdStore } from '../../src/registry/store/etcd-store';
import { waitFor } from '../helpers/child';
import { startEtcd, type EtcdHandle } from '../helpers/etcd';
import { webRegistration } from '../helpers/registry-fixtures';

let etcd: EtcdHandle;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
});

const mark = (rev: number) => [{ kind: 'put' as const, key: PUBLISHED_REV_KEY, value: JSON.stringify({ rev }) }];

describe('etcd election fence', { timeout: 30_000 }, () => {
  it("holds for the leader's writes, and fails once its candidacy is gone or for a follower", { timeout: 30_000 }, async () => {
    const prefix = `fence/${randomUUID()}/`;
    const store = new EtcdStore({ endpoints: etcd.endpoints, prefix });
    const a = new EtcdElection({ endpoints: etcd.endpoints, prefix, candidate: () => 'a:1', ttlSeconds: 2 });
    const b = new EtcdElection({ endpoints: etcd.endpoints, prefix, candidate: 'b:2', ttlSeconds: 2 });
    const admin = new Etcd3({ hosts: etcd.endpoints });
    try {
      await store.open();
      await a.start();
      await waitFor('a to lead', () => a.isLeader());
      await b.start();
      await waitFor('b to see a lead', () => b.leader() === 'a:1');

      assert.equal((await store.txn(a.fence(), mark(1))).ok, true, 'the leader writes');
      assert.equal((await store.txn(b.fence(), mark(2))).ok, false, "a follower's fence never holds");
      const deposedFence = a.fence();

      const leaderKey = await admin.getAll().prefix(`${prefix}election/`).sort('Create', 'Ascend').limit(1).exec();
      await admin.leaseClient.leaseRevoke({ ID: leaderKey.kvs[0].lease });
      await waitFor('b to take over', () => b.isLeader(), 15_000);

      assert.equal((await store.txn(deposedFence, mark(3))).ok, false, "the deposed leader's late write fails");
      assert.equal((await store.txn(b.fence(), mark(4))).ok, true, 'the new leader writes');
      const stored = await store.get(PUBLISHED_REV_KEY);
      assert.deepEqual(JSON.parse(stored?.value ?? '{}'), { rev: 4 });
    } finally {
      admin.close();
      await Promise.all([a.stop(), b.stop()]);
      await store.close();
    }
  });

  it("refuses a deposed leader's TTL expiry write, and lets the new leader make it", { timeout: 30_000 }, async () => {
    const prefix = `fence/${randomUUID()}/`;
    const store = new EtcdStore({ endpoints: etcd.endpoints, prefix });
    const view = new CatalogView(store, { logger: silentLogger() });
    const a = new EtcdElection({ endpoints: etcd.endpoints, prefix, candidate: 'a:1', ttlSeconds: 2 });
    const b = new EtcdElection({ endpoints: etcd.endpoints, prefix, candidate: 'b:2', ttlSeconds: 2 });
    const admin = new Etcd3({ hosts: etcd.endpoints });
    const clock = { now: Date.now() };
    const writerFor = (election: Pick<Election, 'fence'>) => new CatalogWriter({ store, view, election, now: () => clock.now });
    try {
      await store.open();
      await view.start();
      await a.start();
      await waitFor('a to lead', () => a.isLeader());
      await b.start();
      await waitFor('b to see a lead', () => b.leader() === 'a:1');
      await writerFor(a).register(ttlInstance);
      // What a still believes while its lease is gone and it has not noticed yet.
      const staleFence = a.fence();

      const leaderKey = await admin.getAll().prefix(`${prefix}election/`).sort('Create', 'Ascend').limit(1).exec();
      await admin.leaseClient.leaseRevoke({ ID: leaderKey.kvs[0].lease });
      await waitFor('b to take over', () => b.isLeader(), 15_000);
      clock.now += 60_000;

      const notLeader = (err: unknown) => isSwitchboardError(err, 'not_leader');
      await assert.rejects(writerFor({ fence: () => staleFence }).expireCheck('web-1', 'ttl-1'), notLeader, 'before a notices');
      await assert.rejects(writerFor(a).expireCheck('web-1', 'ttl-1'), notLeader, 'after a noticed');
      assert.equal(await checkStatus(store), 'passing', 'the deposed leader wrote nothing');

      assert.ok((await writerFor(b).expireCheck('web-1', 'ttl-1')) !== undefined);
      assert.equal(await checkStatus(store), 'critical');
    } finally {
      admin.close();
      await Promise.all([a.stop(), b.stop()]);
      view.stop();
      await store.close();
    }
  });
});

const ttlInstance = webRegistration('web-1', [{ checkId: 'ttl-1', name: 'ttl', type: 'ttl', ttlMs: 10_000, status: 'passing' }]);

async function checkStatus(store: EtcdStore): Promise<string | undefined> {
  const kv = await store.get(instanceKey('web-1'));
  return (kv && decodeInstance(kv))?.checks[0].status;
}
