import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { CatalogDelta } from '../../src/catalog/model';
import { waitFor } from '../helpers/child';
import { WrappedStore } from '../helpers/wrapped-store';
import { type Harness, type HarnessOptions, get, ok, put, register, startHarness } from './harness';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function setup(options: HarnessOptions = {}): Promise<Harness> {
  h = await startHarness(options);
  return h;
}

describe('GET /v1/switchboard/snapshot and /changes', () => {
  it('snapshot is the whole catalog at a revision; changes is what moved since one', async () => {
    const { app } = await setup();
    ok(await register(app, { Name: 'web', Address: '10.0.0.1', Port: 80 }));
    ok(await register(app, { Name: 'db', Address: '10.0.0.2', Port: 5432 }));
    const snapshot = ok(await get(app, '/v1/switchboard/snapshot')).json as CatalogDelta;
    assert.equal(snapshot.full, true);
    assert.deepEqual(Object.keys(snapshot.services).sort(), ['db', 'web']);
    assert.equal(snapshot.services.web[0].address, '10.0.0.1');

    ok(await put(app, '/v1/agent/service/deregister/db'));
    ok(await register(app, { Name: 'cache', Port: 6379 }));
    const delta = ok(await get(app, `/v1/switchboard/changes?since=${snapshot.rev}`)).json as CatalogDelta;
    assert.equal(delta.full, false);
    assert.deepEqual(Object.keys(delta.services).sort(), ['cache', 'db']);
    assert.deepEqual(delta.services.db, []);
    assert.ok(delta.rev > snapshot.rev);
    assert.equal((ok(await get(app, '/v1/switchboard/changes?since=0')).json as CatalogDelta).full, true);
  });

  it('?min waits until this registry has seen that revision', async () => {
    const store = new WrappedStore();
    const { app, view } = await setup({ store });
    store.hold();
    const rev = (await store.txn([], [{ kind: 'put', key: 'instances/x', value: JSON.stringify({ id: 'x', service: 'x', address: 'a', port: 1, tags: [], meta: {}, weights: { passing: 1, warning: 1 }, checks: [] }) }])).rev;
    const pending = get(app, `/v1/switchboard/changes?since=0&min=${rev}`);
    await waitFor('the request to wait', () => view.pendingWaits === 1);
    store.release();
    const delta = ok(await pending).json as CatalogDelta;
    assert.ok(delta.rev >= rev);
    assert.equal(delta.services.x.length, 1);
  });
});

describe('GET /v1/status/leader and /peers', () => {
  it('name the leader’s API address as JSON', async () => {
    const { app } = await setup();
    const leader = ok(await get(app, '/v1/status/leader'));
    assert.equal(leader.body, '"127.0.0.1:8500"');
    assert.match(String(leader.headers['content-type']), /application\/json/);
    assert.deepEqual(ok(await get(app, '/v1/status/peers')).json, ['127.0.0.1:8500']);
  });
});

describe('writes', () => {
  it('answer only after this registry’s view includes them (read-your-writes)', async () => {
    const store = new WrappedStore();
    const { app, view } = await setup({ store });
    store.hold();
    let answered = false;
    const pending = register(app, { Name: 'web', Port: 1 }).then((r) => {
      answered = true;
      return r;
    });
    await waitFor('the write to reach the store', () => store.txnCount === 1);
    // Parked on the view's read-your-writes wait: the write is durable, not yet visible here.
    await waitFor('the write to wait for this registry’s view', () => view.pendingWaits === 1);
    assert.equal(answered, false, 'the write is durable but not yet visible here');
    store.release();
    ok(await pending);
    assert.ok(view.instance('web'));
  });

  it('answer 503 when the view does not catch up in time', async () => {
    const store = new WrappedStore();
    const { app } = await setup({ store, revWaitMs: 50 });
    store.hold();
    const reply = await register(app, { Name: 'web', Port: 1 });
    assert.equal(reply.status, 503);
    assert.equal((reply.json as { error: string }).error, 'store_unavailable');
    store.release();
  });

  it('answer 503 store_unavailable when the store fails, while reads keep working', async () => {
    const store = new WrappedStore();
    const { app } = await setup({ store });
    ok(await register(app, { Name: 'web', Check: { TTL: '30s' } }));
    store.failing = true;
    for (const reply of [
      await register(app, { Name: 'db', Port: 1 }),
      await put(app, '/v1/agent/check/pass/service:web'),
      await put(app, '/v1/agent/service/deregister/web'),
    ]) {
      assert.equal(reply.status, 503, reply.body);
      assert.equal((reply.json as { error: string }).error, 'store_unavailable');
    }
    assert.equal((ok(await get(app, '/v1/health/service/web')).json as unknown[]).length, 1);
    store.failing = false;
  });
});

describe('unknown routes', () => {
  it('answer 404 with a JSON error', async () => {
    const { app } = await setup();
    const reply = await get(app, '/v1/no-such-endpoint/anything');
    assert.equal(reply.status, 404);
    assert.equal((reply.json as { error: string }).error, 'not_found');
  });
});
