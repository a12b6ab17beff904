import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type Harness, get, ok, put, register, startHarness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

async function registerFleet(): Promise<void> {
  ok(await register(h.app, { Name: 'web', ID: 'web-1', Address: '10.0.0.1', Port: 80, Tags: ['blue', 'v1'], Check: { TTL: '30s' } }));
  ok(await register(h.app, { Name: 'web', ID: 'web-2', Address: '10.0.0.2', Port: 80, Tags: ['green', 'v1'], Check: { TTL: '30s' } }));
  ok(await register(h.app, { Name: 'db', ID: 'db-1', Address: '10.0.0.3', Port: 5432 }));
}

describe('GET /v1/catalog/services', () => {
  it('maps every service to the union of its tags, indexed by the catalog revision', async () => {
    const empty = ok(await get(h.app, '/v1/catalog/services'));
    assert.deepEqual(empty.json, {});
    assert.ok(empty.index >= 1, 'X-Consul-Index is never 0');
    await registerFleet();
    const reply = ok(await get(h.app, '/v1/catalog/services'));
    assert.deepEqual(reply.json, { db: [], web: ['blue', 'v1', 'green'] });
    assert.equal(reply.index, h.view.catalogRev);
    assert.equal(reply.headers['x-consul-knownleader'], 'true');
    assert.equal(reply.headers['x-consul-lastcontact'], '0');
  });
});

describe('GET /v1/catalog/service/:name', () => {
  it('returns CatalogService rows, filtered by ?tag', async () => {
    await registerFleet();
    const reply = ok(await get(h.app, '/v1/catalog/service/web'));
    const rows = reply.json as Record<string, unknown>[];
    assert.equal(rows.length, 2);
    const web1 = h.view.instance('web-1');
    assert.deepEqual(rows[0], {
      ID: '',
      Node: 'switchboard',
      Address: '10.0.0.1',
      Datacenter: 'dc1',
      TaggedAddresses: { lan: '10.0.0.1', wan: '10.0.0.1' },
      NodeMeta: {},
      ServiceKind: '',
      ServiceID: 'web-1',
      ServiceName: 'web',
      ServiceTags: ['blue', 'v1'],
      ServiceAddress: '10.0.0.1',
      ServiceWeights: { Passing: 1, Warning: 1 },
      ServiceMeta: {},
      ServicePort: 80,
      ServiceEnableTagOverride: false,
      CreateIndex: web1?.createIndex,
      ModifyIndex: web1?.modifyIndex,
    });
    const green = ok(await get(h.app, '/v1/catalog/service/web?tag=green')).json as { ServiceID: string }[];
    assert.deepEqual(green.map((r) => r.ServiceID), ['web-2']);
    const both = ok(await get(h.app, '/v1/catalog/service/web?tag=v1&tag=blue')).json as { ServiceID: string }[];
    assert.deepEqual(both.map((r) => r.ServiceID), ['web-1']);
  });

  it('indexes by the service’s own last change, which heartbeats do not move', async () => {
    await registerFleet();
    const webIndex = ok(await get(h.app, '/v1/catalog/service/web')).index;
    assert.equal(webIndex, h.view.instance('web-2')?.modifyIndex);
    assert.ok(ok(await get(h.app, '/v1/catalog/service/db')).index > webIndex);
    ok(await put(h.app, '/v1/agent/check/pass/service:web-1'));
    const afterPass = ok(await get(h.app, '/v1/catalog/service/web')).index;
    assert.ok(afterPass > webIndex, 'a status change is a change');
    ok(await put(h.app, '/v1/agent/check/pass/service:web-1'));
    assert.equal(ok(await get(h.app, '/v1/catalog/service/web')).index, afterPass, 'a plain heartbeat is not');
    ok(await put(h.app, '/v1/agent/service/deregister/db-1'));
    const gone = ok(await get(h.app, '/v1/catalog/service/db'));
    assert.deepEqual(gone.json, []);
    assert.equal(gone.index, h.view.catalogRev, 'deleting moves the index forward, never back');
  });
});

describe('GET /v1/health/service/:name', () => {
  it('returns {Node, Service, Checks} entries', async () => {
    await registerFleet();
    const entries = ok(await get(h.app, '/v1/health/service/web')).json as Record<string, Record<string, unknown>>[];
    assert.equal(entries.length, 2);
    const [first] = entries;
    assert.equal(first.Node.Node, 'switchboard');
    assert.equal(first.Node.Address, '10.0.0.1');
    assert.equal(first.Service.ID, 'web-1');
    assert.equal(first.Service.Service, 'web');
    assert.equal(first.Service.Port, 80);
    assert.deepEqual(first.Service.Weights, { Passing: 1, Warning: 1 });
    const checks = first.Checks as unknown as Record<string, unknown>[];
    assert.deepEqual(checks, [
      {
        Node: 'switchboard',
        CheckID: 'service:web-1',
        Name: "Service 'web' check",
        Status: 'critical',
        Notes: '',
        Output: '',
        ServiceID: 'web-1',
        ServiceName: 'web',
        ServiceTags: ['blue', 'v1'],
        Type: 'ttl',
        Definition: { TTL: '30s' },
        CreateIndex: h.view.instance('web-1')?.createIndex,
        ModifyIndex: h.view.instance('web-1')?.modifyIndex,
      },
    ]);
  });

  it('?passing keeps instances whose every check passes; ?tag filters', async () => {
    await registerFleet();
    ok(await register(h.app, { Name: 'web', ID: 'web-3', Port: 80, Checks: [{ TTL: '30s' }, { TTL: '30s' }] }));
    ok(await put(h.app, '/v1/agent/check/pass/service:web-1'));
    ok(await put(h.app, '/v1/agent/check/warn/service:web-2'));
    ok(await put(h.app, '/v1/agent/check/pass/service:web-3:1'));
    const ids = async (url: string) => (ok(await get(h.app, url)).json as { Service: { ID: string } }[]).map((e) => e.Service.ID);
    assert.deepEqual(await ids('/v1/health/service/web'), ['web-1', 'web-2', 'web-3']);
    assert.deepEqual(await ids('/v1/health/service/web?passing'), ['web-1'], 'warning and half-passing are not passing');
    assert.deepEqual(await ids('/v1/health/service/web?passing=true'), ['web-1']);
    assert.deepEqual(await ids('/v1/health/service/web?passing=false'), ['web-1', 'web-2', 'web-3']);
    assert.deepEqual(await ids('/v1/health/service/web?tag=green'), ['web-2']);
    assert.deepEqual(await ids('/v1/health/service/db?passing'), ['db-1'], 'no checks = passing');
    assert.deepEqual(await ids('/v1/health/service/unknown'), []);
  });
});
