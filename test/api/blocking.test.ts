import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { waitFor } from '../helpers/child';
import { type Harness, get, ok, put, register, startHarness } from './harness';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function setup(options: { maxWaitMs?: number } = {}): Promise<Harness> {
  h = await startHarness(options);
  return h;
}

describe('blocking queries (?index=&wait=)', () => {
  it('wake when the service changes and report the new index', async () => {
    const { app, view } = await setup();
    ok(await register(app, { Name: 'web', ID: 'web-1', Port: 1 }));
    const first = ok(await get(app, '/v1/health/service/web'));
    const blocked = get(app, `/v1/health/service/web?index=${first.index}&wait=30s`);
    await waitFor('the query to park', () => view.pendingWaits === 1);
    ok(await register(app, { Name: 'web', ID: 'web-2', Port: 2 }));
    const woken = ok(await blocked);
    assert.ok(woken.index > first.index);
    assert.equal((woken.json as unknown[]).length, 2);
  });

  it('time out with the same index and unchanged data', async () => {
    const { app } = await setup();
    ok(await register(app, { Name: 'web', Port: 1 }));
    const first = ok(await get(app, '/v1/catalog/service/web'));
    const timedOut = ok(await get(app, `/v1/catalog/service/web?index=${first.index}&wait=50ms`));
    assert.equal(timedOut.index, first.index);
    assert.deepEqual(timedOut.json, first.json);
  });

  it('are not woken by heartbeats that change nothing', async () => {
    const { app, view } = await setup();
    ok(await register(app, { Name: 'web', Check: { TTL: '1h', Status: 'passing' } }));
    const first = ok(await get(app, '/v1/health/service/web'));
    const blocked = get(app, `/v1/health/service/web?index=${first.index}&wait=30s`);
    await waitFor('the query to park', () => view.pendingWaits === 1);
    ok(await put(app, '/v1/agent/check/pass/service:web'));
    assert.equal(view.pendingWaits, 1, 'still parked after the heartbeat');
    ok(await put(app, '/v1/agent/check/warn/service:web'));
    const woken = ok(await blocked);
    assert.ok(woken.index > first.index, 'a status change does wake it');
  });

  it('catalog-wide reads wake on a change to any service', async () => {
    const { app, view } = await setup();
    const first = ok(await get(app, '/v1/catalog/services'));
    const blocked = get(app, `/v1/catalog/services?index=${first.index}&wait=30s`);
    await waitFor('the query to park', () => view.pendingWaits === 1);
    ok(await register(app, { Name: 'db', Port: 1 }));
    const woken = ok(await blocked);
    assert.deepEqual(woken.json, { db: [] });
    assert.ok(woken.index > first.index);
  });

  it('answer at once when the index is ahead of ours (the store was reset)', async () => {
    const { app } = await setup();
    ok(await register(app, { Name: 'web', Port: 1 }));
    const reply = ok(await get(app, '/v1/health/service/web?index=999999&wait=10m'));
    assert.ok(reply.index < 999999);
  });

  it('never wait longer than ApiConfig.maxWaitMs', async () => {
    const { app } = await setup({ maxWaitMs: 50 });
    const index = ok(await get(app, '/v1/catalog/services')).index;
    // Without the cap this would park for ten minutes and the test would time out.
    assert.equal(ok(await get(app, `/v1/catalog/services?index=${index}&wait=10m`)).index, index);
  });

  it('are answered when the server closes', async () => {
    const harness = await setup();
    const index = ok(await get(harness.app, '/v1/catalog/services')).index;
    const blocked = get(harness.app, `/v1/catalog/services?index=${index}&wait=10m`);
    await waitFor('the query to park', () => harness.view.pendingWaits === 1);
    await harness.close();
    h = undefined;
    assert.equal((await blocked).status, 200);
  });

  it('are cancelled when the client disconnects, leaving no waiter behind', async () => {
    const { app, view } = await setup();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const index = ok(await get(app, '/v1/catalog/services')).index;
    const request = http.get({ host: '127.0.0.1', port, path: `/v1/catalog/services?index=${index}&wait=10m` });
    request.on('error', () => undefined);
    await waitFor('the query to park', () => view.pendingWaits === 1);
    request.destroy();
    await waitFor('the waiter to be released', () => view.pendingWaits === 0);
  });
});
