import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Instance } from '../../src/catalog/model';
import { silentLogger } from '../../src/log';
import { CatalogView, type ViewChange } from '../../src/registry/catalog-view';
import { encodeDeadline, encodeInstance } from '../../src/registry/instance-codec';
import { instanceKey, ttlKey } from '../../src/registry/keys';
import type { Store } from '../../src/registry/store/store';
import { WrappedStore } from '../helpers/wrapped-store';

function instance(id: string, service: string, port = 80): Instance {
  return { id, service, address: '10.0.0.1', port, tags: [], meta: {}, weights: { passing: 1, warning: 1 }, checks: [], createIndex: 0, modifyIndex: 0 };
}

async function putInstance(store: Store, inst: Instance): Promise<number> {
  return (await store.txn([], [{ kind: 'put', key: instanceKey(inst.id), value: encodeInstance(inst) }])).rev;
}

async function deleteInstance(store: Store, id: string): Promise<number> {
  return (await store.txn([], [{ kind: 'delete', key: instanceKey(id) }])).rev;
}

async function heartbeat(store: Store, checkId: string, deadline: number): Promise<number> {
  return (await store.txn([], [{ kind: 'put', key: ttlKey(checkId), value: encodeDeadline(deadline) }])).rev;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(options: { ringSize?: number; historyLimit?: number } = {}) {
  const store = new WrappedStore({ historyLimit: options.historyLimit });
  await store.open();
  const view = new CatalogView(store, { logger: silentLogger(), ringSize: options.ringSize, revWaitMs: 2000 });
  const changes: ViewChange[] = [];
  cleanups.push(() => store.close());
  cleanups.push(() => view.stop());
  return {
    store,
    view,
    changes,
    start: async () => {
      await view.start();
      view.onChange((c) => changes.push(c));
    },
  };
}

describe('CatalogView', () => {
  it('puts a brand-new store at revision 1, so the first registration has an index of its own', async () => {
    const { store, view, start } = await setup();
    await start();
    const empty = view.catalogRev;
    assert.equal(empty, 1);
    const rev = await putInstance(store, instance('web-1', 'web'));
    assert.ok(rev > empty);
    assert.equal(view.catalogRev, rev);
    assert.ok(view.serviceIndex('web') > empty);
  });

  it('starts from what the store already holds, with indexes from the records', async () => {
    const { store, view, start } = await setup();
    const webRev = await putInstance(store, instance('web-1', 'web'));
    await putInstance(store, instance('db-1', 'db'));
    await start();
    assert.deepEqual(view.serviceNames(), ['db', 'web']);
    assert.equal(view.serviceIndex('web'), webRev);
    assert.equal(view.instance('web-1')?.createIndex, webRev);
    assert.equal(view.rev, webRev + 1);
    assert.ok(view.serviceIndex('never-seen') >= 1);
  });

  it('emits one change per batch that touched instances, chained by prevRev', async () => {
    const { store, view, changes, start } = await setup();
    await start();
    const r0 = view.catalogRev;
    const r1 = await putInstance(store, instance('web-1', 'web'));
    const r2 = await putInstance(store, instance('db-1', 'db'));
    const r3 = await deleteInstance(store, 'web-1');
    assert.deepEqual(changes, [
      { rev: r1, prevRev: r0, services: ['web'] },
      { rev: r2, prevRev: r1, services: ['db'] },
      { rev: r3, prevRev: r2, services: ['web'] },
    ]);
    assert.equal(view.catalogRev, r3);
    assert.equal(view.serviceIndex('web'), r3, 'a deletion moves the service index');
    assert.deepEqual(view.serviceInstances('web'), []);
  });

  it('names the instances each change put or deleted', async () => {
    const { store, view, start } = await setup();
    await start();
    const seen: (readonly string[] | undefined)[] = [];
    view.onChange((_change, instanceIds) => seen.push(instanceIds));
    await putInstance(store, instance('web-1', 'web'));
    await store.txn(
      [],
      [
        { kind: 'put', key: instanceKey('web-2'), value: encodeInstance(instance('web-2', 'web')) },
        { kind: 'delete', key: instanceKey('web-1') },
      ],
    );
    await heartbeat(store, 'service:web-2', 1);
    assert.deepEqual(seen, [['web-1'], ['web-2', 'web-1']]);
  });

  it('names the TTL checks whose deadlines moved', async () => {
    const { store, view, start } = await setup();
    await start();
    const moved: (readonly string[] | undefined)[] = [];
    view.onDeadlines((checkIds) => moved.push(checkIds));
    await heartbeat(store, 'service:a', 10);
    await store.txn([], [{ kind: 'delete', key: ttlKey('service:a') }]);
    await store.txn([], [{ kind: 'delete', key: ttlKey('service:never') }]);
    assert.deepEqual(moved, [['service:a'], ['service:a']]);
  });

  it('reports both services when an ID moves to another service name', async () => {
    const { store, view, changes, start } = await setup();
    await start();
    await putInstance(store, instance('x-1', 'old'));
    await putInstance(store, instance('x-1', 'new'));
    assert.deepEqual(changes[1].services, ['new', 'old']);
    assert.deepEqual(view.serviceNames(), ['new']);
  });

  it('does not emit or move catalog indexes for heartbeat-only batches', async () => {
    const { store, view, changes, start } = await setup();
    await start();
    const r1 = await putInstance(store, instance('web-1', 'web'));
    let deadlineCalls = 0;
    view.onDeadlines(() => deadlineCalls++);
    const hb = await heartbeat(store, 'service:web-1', 123_456);
    assert.equal(changes.length, 1);
    assert.equal(view.catalogRev, r1);
    assert.equal(view.serviceIndex('web'), r1);
    assert.equal(view.rev, hb, 'the store revision is still tracked');
    assert.equal(view.ttlDeadline('service:web-1'), 123_456);
    assert.equal(deadlineCalls, 1);
    assert.deepEqual((await view.changes(r1)).services, {}, 'a heartbeat is not a catalog change');
  });

  it('answers changes() with a delta, or the whole catalog when it cannot', async () => {
    const { store, view, start } = await setup();
    await start();
    const r1 = await putInstance(store, instance('web-1', 'web'));
    await putInstance(store, instance('db-1', 'db'));
    await deleteInstance(store, 'db-1');

    const full = await view.changes(0);
    assert.equal(full.full, true);
    assert.deepEqual(Object.keys(full.services), ['web']);

    const delta = await view.changes(r1);
    assert.equal(delta.full, false);
    assert.equal(delta.rev, view.rev);
    assert.deepEqual(delta.services, { db: [] }, 'a service that is gone is reported empty');

    const ahead = await view.changes(view.rev + 10);
    assert.equal(ahead.full, true, 'a revision from the future means the store was reset');
  });

  it('falls back to full once the ring has forgotten the revision asked for', async () => {
    const { store, view, start } = await setup({ ringSize: 2 });
    await start();
    const r1 = await putInstance(store, instance('a-1', 'a'));
    const r2 = await putInstance(store, instance('b-1', 'b'));
    await putInstance(store, instance('c-1', 'c'));
    await putInstance(store, instance('d-1', 'd'));
    assert.equal((await view.changes(r1)).full, true);
    const recent = await view.changes(r2);
    assert.equal(recent.full, false);
    assert.deepEqual(Object.keys(recent.services).sort(), ['c', 'd']);
  });

  it('waits for minRev before answering changes()', async () => {
    const { store, view, start } = await setup();
    await start();
    const pending = view.changes(0, view.rev + 1);
    const rev = await putInstance(store, instance('web-1', 'web'));
    const delta = await pending;
    assert.equal(delta.rev, rev);
    assert.equal(delta.services.web.length, 1);
  });

  it('wakes a blocking wait only for its own service', async () => {
    const { store, view, start } = await setup();
    await start();
    await putInstance(store, instance('web-1', 'web'));
    let woke = false;
    const waiting = view.waitForChange(view.serviceIndex('web'), 'web', 60_000).then(() => (woke = true));
    await putInstance(store, instance('db-1', 'db'));
    await new Promise((r) => setImmediate(r));
    assert.equal(woke, false, 'another service changing must not wake it');
    await putInstance(store, instance('web-2', 'web'));
    await waiting;
    assert.equal(view.pendingWaits, 0);
  });

  it('ends a blocking wait on timeout, abort, or an index ahead of ours', async () => {
    const { store, view, start } = await setup();
    await start();
    await putInstance(store, instance('web-1', 'web'));
    const index = view.serviceIndex('web');
    await view.waitForChange(index, 'web', 10);
    assert.equal(view.serviceIndex('web'), index);

    const controller = new AbortController();
    const aborted = view.waitForChange(index, undefined, 60_000, controller.signal);
    assert.equal(view.pendingWaits, 1);
    controller.abort();
    await aborted;
    assert.equal(view.pendingWaits, 0, 'abort leaves no waiter behind');

    await view.waitForChange(index + 100, 'web', 60_000);
  });

  it('waitForRev resolves when the view applies the revision, false when it never does', async () => {
    const { store, view, start } = await setup();
    await start();
    store.hold();
    const rev = await putInstance(store, instance('web-1', 'web'));
    const waiting = view.waitForRev(rev);
    assert.equal(view.instance('web-1'), undefined);
    store.release();
    assert.equal(await waiting, true);
    assert.ok(view.instance('web-1'));
    assert.equal(await view.waitForRev(rev + 5, 10), false);
  });

  it('re-reads after compaction and reports exactly the services that differ', async () => {
    const { store, view, changes, start } = await setup();
    await putInstance(store, instance('web-1', 'web'));
    await putInstance(store, instance('db-1', 'db'));
    await putInstance(store, instance('api-1', 'api'));
    await start();
    const told: (readonly string[] | undefined)[] = [];
    view.onChange((_change, instanceIds) => told.push(instanceIds));
    const before = view.rev;
    store.dropFeed();
    await putInstance(store, instance('web-2', 'web'));
    await deleteInstance(store, 'db-1');
    await heartbeat(store, 'service:api-1', 1);
    assert.equal(view.serviceInstances('web').length, 1, 'the feed is broken: nothing applied yet');
    store.reportCompaction();
    await view.waitForRev(before + 3);
    assert.deepEqual(changes.map((c) => c.services), [['db', 'web']]);
    assert.deepEqual(told, [undefined], 'after a re-read, consumers are told to look at every instance');
    const delta = await view.changes(before);
    assert.equal(delta.full, false, 'the ring stays exact across a re-read');
    assert.deepEqual(Object.keys(delta.services).sort(), ['db', 'web']);
    assert.equal(view.ttlDeadline('service:api-1'), 1);

    // The view follows the feed again from the re-read revision.
    await putInstance(store, instance('api-2', 'api'));
    assert.equal(view.serviceInstances('api').length, 2);
  });
});
