import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSwitchboardError } from '../../src/errors';
import { CatalogWriter, type RegistrationSpec } from '../../src/registry/catalog-writer';
import { decodeInstance } from '../../src/registry/instance-codec';
import { FakeElection } from '../helpers/fake-election';
import { cleanupsAfterEach, openedStore, startedView, webRegistration } from '../helpers/registry-fixtures';
import { WrappedStore } from '../helpers/wrapped-store';

const spec: RegistrationSpec = webRegistration('web-1', [
  { checkId: 'a', name: 'a', type: 'ttl', ttlMs: 60_000 },
  { checkId: 'b', name: 'b', type: 'ttl', ttlMs: 60_000 },
]);

const cleanups = cleanupsAfterEach();

/** Two registries (view + writer each) over one store, as with etcd. */
async function twoRegistries() {
  const store = await openedStore(cleanups, new WrappedStore());
  const make = async () => {
    const view = await startedView(cleanups, store);
    return { view, writer: new CatalogWriter({ store, view }) };
  };
  return { store, one: await make(), two: await make() };
}

describe('CatalogWriter', () => {
  it('loses no update when two registries change one instance at the same time', async () => {
    const { store, one, two } = await twoRegistries();
    await one.writer.register(spec);
    const txnsBefore = store.txnCount;
    await Promise.all([one.writer.updateCheck('a', 'passing', 'from one'), two.writer.updateCheck('b', 'warning', 'from two')]);
    assert.ok(store.txnCount > txnsBefore + 2, 'one of them had to retry');
    const checks = one.view.instance('web-1')?.checks.map((c) => [c.checkId, c.status, c.output]);
    assert.deepEqual(checks, [
      ['a', 'passing', 'from one'],
      ['b', 'warning', 'from two'],
    ]);
    assert.deepEqual(two.view.instance('web-1')?.checks, one.view.instance('web-1')?.checks);
  });

  it('a re-registration racing a status change keeps the status', async () => {
    const { one, two } = await twoRegistries();
    await one.writer.register(spec);
    await Promise.all([one.writer.register({ ...spec, port: 81 }), two.writer.updateCheck('a', 'passing', '')]);
    const instance = one.view.instance('web-1');
    assert.equal(instance?.port, 81);
    assert.equal(instance?.checks.find((c) => c.checkId === 'a')?.status, 'passing');
  });

  it('wraps store failures as store_unavailable and deregistering an unknown ID as not_found', async () => {
    const { store, one } = await twoRegistries();
    await assert.rejects(one.writer.deregister('nope'), (err: unknown) => isSwitchboardError(err, 'not_found'));
    store.failing = true;
    await assert.rejects(one.writer.register(spec), (err: unknown) => isSwitchboardError(err, 'store_unavailable'));
    store.failing = false;
  });
});

const CANDIDACY = 'election/me';

/**
 * One registry whose leader-only writes carry a real fence: the candidacy key at its revision.
 * `depose()` deletes that key, as etcd does when the leader's lease ends.
 */
async function fencedRegistry() {
  const store = await openedStore(cleanups, new WrappedStore());
  const view = await startedView(cleanups, store);
  const clock = { now: 1_000_000 };
  const election = new FakeElection(true);
  const { rev } = await store.txn([], [{ kind: 'put', key: CANDIDACY, value: 'me' }]);
  election.fenceWith = [{ key: CANDIDACY, modRev: rev }];
  const writer = new CatalogWriter({ store, view, election, now: () => clock.now });
  const depose = async () => {
    await store.txn([], [{ kind: 'delete', key: CANDIDACY }]);
  };
  const httpSpec: RegistrationSpec = {
    ...spec,
    id: 'api-1',
    checks: [{ checkId: 'h', name: 'h', type: 'http', http: 'http://10.0.0.1/', intervalMs: 10_000 }],
  };
  const ttlSpec: RegistrationSpec = {
    ...spec,
    checks: [{ checkId: 'a', name: 'a', type: 'ttl', ttlMs: 1000, status: 'passing', deregisterCriticalAfterMs: 1000 }],
  };
  return { store, view, writer, clock, depose, httpSpec, ttlSpec };
}

const notLeader = (err: unknown) => isSwitchboardError(err, 'not_leader');

describe('CatalogWriter leader-only writes', () => {
  it('are made while the fence holds', async () => {
    const { view, writer, clock, httpSpec, ttlSpec } = await fencedRegistry();
    await writer.register(ttlSpec);
    await writer.register(httpSpec);
    clock.now += 5000;
    assert.ok((await writer.expireCheck('web-1', 'a')) !== undefined);
    assert.ok((await writer.recordCheckResult('api-1', 'h', 'passing', 'ok')) !== undefined);
    clock.now += 5000;
    assert.ok((await writer.reap('web-1')) !== undefined);
    assert.equal(view.instance('api-1')?.checks[0].status, 'passing');
  });

  it('are refused with not_leader once the fence fails: one txn each, no retries, nothing written', async () => {
    const { store, view, writer, clock, depose, httpSpec, ttlSpec } = await fencedRegistry();
    await writer.register(ttlSpec);
    await writer.register(httpSpec);
    await depose();
    clock.now += 5000;
    const before = { txns: store.txnCount, rev: (await store.range('')).rev };
    await assert.rejects(writer.expireCheck('web-1', 'a'), notLeader);
    await assert.rejects(writer.recordCheckResult('api-1', 'h', 'passing', 'ok'), notLeader);
    assert.equal(store.txnCount - before.txns, 2, 'a lost fence is not retried like a conflict');
    assert.equal((await store.range('')).rev, before.rev, 'nothing was written');
    assert.equal(view.instance('web-1')?.checks[0].status, 'passing');
  });

  it('still retry an ordinary conflict while the fence holds', async () => {
    const { store, writer, httpSpec } = await fencedRegistry();
    await writer.register(httpSpec);
    // Another registry's registration lands between our read and our txn.
    const txn = store.txn.bind(store);
    let raced = false;
    store.txn = async (compares, ops) => {
      if (!raced) {
        raced = true;
        await writer.register({ ...httpSpec, port: 81 });
      }
      return txn(compares, ops);
    };
    assert.ok((await writer.recordCheckResult('api-1', 'h', 'passing', 'ok')) !== undefined);
    const kv = await store.get('instances/api-1');
    const instance = kv && decodeInstance(kv);
    assert.equal(instance?.port, 81);
    assert.equal(instance?.checks[0].status, 'passing');
  });

  it('leave API writes unfenced: registrations and heartbeats work on any registry', async () => {
    const { writer, depose, ttlSpec } = await fencedRegistry();
    await depose();
    await writer.register(ttlSpec);
    assert.ok((await writer.updateCheck('a', 'warning', 'slow')) > 0);
    await writer.deregister('web-1');
  });
});
