import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ttlKey } from '../../src/registry/keys';
import { type Harness, get, ok, put, register, startHarness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

describe('PUT /v1/agent/service/register', () => {
  it('registers with Consul defaults: ID = Name, weights 1/1, no tags or meta', async () => {
    const reply = ok(await register(h.app, { Name: 'web', Address: '10.0.0.5', Port: 8080 }));
    assert.equal(reply.body, '');
    const services = (await get(h.app, '/v1/agent/services')).json as Record<string, Record<string, unknown>>;
    assert.deepEqual(services, {
      web: {
        ID: 'web',
        Service: 'web',
        Tags: [],
        Meta: {},
        Port: 8080,
        Address: '10.0.0.5',
        Weights: { Passing: 1, Warning: 1 },
        EnableTagOverride: false,
        Datacenter: 'dc1',
      },
    });
  });

  it('uses the registering peer as the address when none is given', async () => {
    ok(await register(h.app, { Name: 'web', Port: 1 }));
    assert.equal(h.view.instance('web')?.address, '127.0.0.1');
  });

  it('accepts lower-case and snake_case keys like Consul, and ignores fields it does not use', async () => {
    ok(
      await register(h.app, {
        name: 'web',
        id: 'web-1',
        port: 81,
        tags: ['x'],
        enable_tag_override: true,
        Kind: '',
        Connect: { Native: false },
        check: { ttl: '10s', deregister_critical_service_after: '90s', check_id: 'hb' },
      }),
    );
    const instance = h.view.instance('web-1');
    assert.equal(instance?.service, 'web');
    assert.equal(instance?.port, 81);
    assert.deepEqual(instance?.tags, ['x']);
    assert.equal(instance?.checks[0].checkId, 'hb');
    assert.equal(instance?.checks[0].deregisterCriticalAfterMs, 90_000);
  });

  it('re-registering an ID updates it in place and keeps its createIndex', async () => {
    ok(await register(h.app, { Name: 'web', ID: 'web-1', Port: 1, Tags: ['v1'] }));
    const first = h.view.instance('web-1');
    ok(await register(h.app, { Name: 'web', ID: 'web-1', Port: 2, Tags: ['v2'] }));
    const second = h.view.instance('web-1');
    assert.equal(h.view.serviceInstances('web').length, 1);
    assert.equal(second?.port, 2);
    assert.deepEqual(second?.tags, ['v2']);
    assert.equal(second?.createIndex, first?.createIndex);
    assert.ok((second?.modifyIndex ?? 0) > (first?.modifyIndex ?? 0));
  });

  it('keeps a check’s status across re-registration, and old checks unless replace-existing-checks', async () => {
    ok(await register(h.app, { Name: 'web', Checks: [{ TTL: '30s', CheckID: 'a' }, { TTL: '30s', CheckID: 'b' }] }));
    ok(await put(h.app, '/v1/agent/check/pass/a'));
    ok(await register(h.app, { Name: 'web', Checks: [{ TTL: '30s', CheckID: 'a' }] }));
    const kept = h.view.instance('web')?.checks.map((c) => [c.checkId, c.status]);
    assert.deepEqual(kept, [['a', 'passing'], ['b', 'critical']]);
    ok(await register(h.app, { Name: 'web', Checks: [{ TTL: '30s', CheckID: 'a' }] }, '?replace-existing-checks=true'));
    assert.deepEqual(h.view.instance('web')?.checks.map((c) => c.checkId), ['a']);
    assert.equal(h.view.ttlDeadline('b'), undefined, 'the dropped check’s deadline is removed too');
  });

  it('rejects a check ID that another instance owns, writing nothing', async () => {
    ok(await register(h.app, { Name: 'web', ID: 'web-1', Check: { TTL: '30s', CheckID: 'shared' } }));
    const rev = h.view.rev;
    const reply = await register(h.app, { Name: 'web', ID: 'web-2', Check: { TTL: '30s', CheckID: 'shared' } });
    assert.equal(reply.status, 409);
    assert.deepEqual(reply.json, { error: 'conflict', message: 'check ID "shared" belongs to service ID "web-1"', field: 'CheckID' });
    assert.equal(h.view.rev, rev);
  });

  it('answers only once its own view holds the write (read-your-writes)', async () => {
    ok(await register(h.app, { Name: 'web', Port: 1 }));
    assert.equal((await get(h.app, '/v1/agent/service/web')).status, 200);
  });
});

describe('PUT /v1/agent/service/deregister/:id', () => {
  it('removes the instance and its TTL deadlines', async () => {
    ok(await register(h.app, { Name: 'web', Check: { TTL: '30s' } }));
    assert.ok(h.view.ttlDeadline('service:web'));
    ok(await put(h.app, '/v1/agent/service/deregister/web'));
    assert.equal(h.view.instance('web'), undefined);
    assert.equal(h.view.ttlDeadline('service:web'), undefined);
    assert.deepEqual((await get(h.app, '/v1/agent/services')).json, {});
  });

  it('accepts long IDs in the path (up to 128 characters)', async () => {
    const id = 'web-'.padEnd(128, 'x');
    ok(await register(h.app, { Name: 'web', ID: id, Check: { TTL: '30s' } }));
    ok(await put(h.app, `/v1/agent/check/pass/service:${id}`));
    ok(await put(h.app, `/v1/agent/service/deregister/${id}`));
    assert.equal(h.view.instance(id), undefined);
  });

  it('answers 404 for an unknown ID', async () => {
    const reply = await put(h.app, '/v1/agent/service/deregister/nope');
    assert.equal(reply.status, 404);
    assert.equal((reply.json as { error: string }).error, 'not_found');
  });
});

describe('GET /v1/agent/service/:id', () => {
  it('returns one AgentService, 404 when unknown', async () => {
    ok(await register(h.app, { Name: 'web', ID: 'web-1', Port: 9, Meta: { v: '1' }, Weights: { Passing: 5, Warning: 2 } }));
    const reply = ok(await get(h.app, '/v1/agent/service/web-1'));
    const body = reply.json as Record<string, unknown>;
    assert.equal(body.ID, 'web-1');
    assert.equal(body.Service, 'web');
    assert.deepEqual(body.Meta, { v: '1' });
    assert.deepEqual(body.Weights, { Passing: 5, Warning: 2 });
    assert.equal(reply.index, h.view.serviceIndex('web'));
    assert.equal((await get(h.app, '/v1/agent/service/nope')).status, 404);
  });
});

describe('PUT /v1/agent/check/{pass,warn,fail,update}/:checkId', () => {
  it('sets status and output (?note=), 404 for an unknown check', async () => {
    ok(await register(h.app, { Name: 'web', Check: { TTL: '30s' } }));
    const status = () => h.view.instance('web')?.checks[0];
    ok(await put(h.app, '/v1/agent/check/warn/service:web?note=slow'));
    assert.deepEqual([status()?.status, status()?.output], ['warning', 'slow']);
    ok(await put(h.app, '/v1/agent/check/fail/service:web'));
    assert.deepEqual([status()?.status, status()?.output], ['critical', '']);
    ok(await put(h.app, '/v1/agent/check/update/service:web', { Status: 'passing', Output: 'all good' }));
    assert.deepEqual([status()?.status, status()?.output], ['passing', 'all good']);
    const unknown = await put(h.app, '/v1/agent/check/pass/nope');
    assert.equal(unknown.status, 404);
    assert.equal((unknown.json as { error: string }).error, 'not_found');
  });

  it('a heartbeat that changes nothing only moves the deadline', async () => {
    ok(await register(h.app, { Name: 'web', Check: { TTL: '30s' } }));
    ok(await put(h.app, '/v1/agent/check/pass/service:web'));
    const modifyIndex = h.view.instance('web')?.modifyIndex;
    const messages = h.messages.length;
    const before = await h.store.get(ttlKey('service:web'));
    ok(await put(h.app, '/v1/agent/check/pass/service:web'));
    assert.equal(h.view.instance('web')?.modifyIndex, modifyIndex);
    assert.equal(h.messages.length, messages, 'no catalog change is published');
    const after = await h.store.get(ttlKey('service:web'));
    assert.ok((after?.modRev ?? 0) > (before?.modRev ?? 0), 'the deadline was written again');
  });

  it('refuses pass/warn/fail on a check that is not a TTL check', async () => {
    ok(await register(h.app, { Name: 'web', Check: { HTTP: 'http://127.0.0.1:1/health', Interval: '10s' } }));
    const reply = await put(h.app, '/v1/agent/check/pass/service:web');
    assert.equal(reply.status, 400);
    assert.equal(h.view.instance('web')?.checks[0].status, 'critical');
  });
});
