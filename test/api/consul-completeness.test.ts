/**
 * The Consul endpoints beyond register/discover, with Consul's JSON field names and status
 * codes: nodes and members, checks by service/node/state, maintenance mode, the agent's
 * aggregated health, catalog register/deregister, `?filter=`, and the honest answers (501
 * for what is not implemented, 405 with Allow, 500 for another datacenter, X-Consul-*
 * headers on every /v1 answer, JSON parsed only where a route takes JSON).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { type Harness, get, ok, put, register, startHarness } from './harness';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function withServices(): Promise<Harness> {
  h = await startHarness();
  ok(await register(h.app, { Name: 'web', ID: 'web-1', Address: '127.0.0.1', Port: 8001, Tags: ['v1', 'primary'], Meta: { env: 'prod' }, Check: { TTL: '30s', Status: 'passing' } }));
  ok(await register(h.app, { Name: 'web', ID: 'web-2', Address: '127.0.0.1', Port: 8002, Tags: ['v2'], Meta: { env: 'staging' }, Check: { TTL: '30s' } }));
  ok(await register(h.app, { Name: 'db', ID: 'db-1', Address: '127.0.0.1', Port: 5432, Check: { TTL: '30s', Status: 'warning' } }));
  return h;
}

type Json = Record<string, unknown>;

describe('Consul API: nodes, members, checks', () => {
  it('/v1/catalog/nodes and /v1/catalog/node/:node list the catalog node and its services', async () => {
    const { app } = await withServices();
    const nodes = ok(await get(app, '/v1/catalog/nodes'));
    const [node] = nodes.json as Json[];
    assert.deepEqual(Object.keys(node), ['ID', 'Node', 'Address', 'Datacenter', 'TaggedAddresses', 'Meta', 'CreateIndex', 'ModifyIndex']);
    assert.equal(node.Node, 'switchboard');
    assert.equal(node.Datacenter, 'dc1');
    assert.ok(nodes.index >= 1);
    const detail = ok(await get(app, '/v1/catalog/node/switchboard')).json as { Node: Json; Services: Record<string, Json> };
    assert.deepEqual(Object.keys(detail.Services).sort(), ['db-1', 'web-1', 'web-2']);
    assert.equal(detail.Services['web-1'].Service, 'web');
    assert.equal(ok(await get(app, '/v1/catalog/node/elsewhere')).body, 'null', 'an unknown node is 200 null, as Consul answers');
    assert.deepEqual(ok(await get(app, '/v1/catalog/nodes?node-meta=rack:r1')).json, [], 'our node has no metadata');
    assert.deepEqual(ok(await get(app, '/v1/catalog/service/web?node-meta=rack:r1')).json, []);
  });

  it('/v1/agent/members and /v1/status/peers list the registry processes; /v1/agent/self names node and datacenter', async () => {
    const { app } = await withServices();
    const [member] = ok(await get(app, '/v1/agent/members')).json as Json[];
    assert.equal(member.Name, '127.0.0.1:8500');
    assert.equal(member.Addr, '127.0.0.1');
    assert.equal(member.Port, 8500);
    assert.equal(member.Status, 1);
    assert.deepEqual(member.Tags, { dc: 'dc1', role: 'consul' });
    assert.deepEqual(ok(await get(app, '/v1/status/peers')).json, ['127.0.0.1:8500']);
    const self = ok(await get(app, '/v1/agent/self')).json as { Config: Json };
    assert.equal(self.Config.Datacenter, 'dc1');
    assert.equal(self.Config.NodeName, 'switchboard');
  });

  it('/v1/agent/checks, /v1/health/checks/:service, /v1/health/node/:node, /v1/health/state/:state', async () => {
    const { app } = await withServices();
    const checks = ok(await get(app, '/v1/agent/checks')).json as Record<string, Json>;
    assert.deepEqual(Object.keys(checks).sort(), ['service:db-1', 'service:web-1', 'service:web-2']);
    assert.equal(checks['service:web-1'].Status, 'passing');
    assert.equal(checks['service:web-1'].ServiceName, 'web');
    for (const key of ['Node', 'CheckID', 'Name', 'Status', 'Notes', 'Output', 'ServiceID', 'ServiceName', 'ServiceTags', 'Type', 'Definition', 'CreateIndex', 'ModifyIndex']) {
      assert.ok(key in checks['service:web-1'], key);
    }
    const web = ok(await get(app, '/v1/health/checks/web')).json as Json[];
    assert.deepEqual(web.map((c) => c.CheckID).sort(), ['service:web-1', 'service:web-2']);
    assert.equal((ok(await get(app, '/v1/health/node/switchboard')).json as Json[]).length, 3);
    assert.deepEqual(ok(await get(app, '/v1/health/node/other')).json, []);
    assert.deepEqual((ok(await get(app, '/v1/health/state/critical')).json as Json[]).map((c) => c.ServiceID), ['web-2']);
    assert.deepEqual((ok(await get(app, '/v1/health/state/warning')).json as Json[]).map((c) => c.ServiceID), ['db-1']);
    assert.equal((ok(await get(app, '/v1/health/state/any')).json as Json[]).length, 3);
    const bad = await get(app, '/v1/health/state/sick');
    assert.equal(bad.status, 400);
    assert.equal((bad.json as { field: string }).field, 'state');
    assert.equal(ok(await get(app, '/v1/health/service/web?near=_agent')).status, 200, '?near is accepted');
  });

  it('/v1/agent/health/service/id/:id and /name/:name answer the aggregated status as the status code', async () => {
    const { app } = await withServices();
    const passing = await get(app, '/v1/agent/health/service/id/web-1');
    assert.equal(passing.status, 200);
    assert.equal((passing.json as Json).AggregatedStatus, 'passing');
    assert.equal(((passing.json as Json).Service as Json).ID, 'web-1');
    assert.equal((await get(app, '/v1/agent/health/service/id/db-1')).status, 429);
    assert.equal((await get(app, '/v1/agent/health/service/id/web-2')).status, 503);
    const byName = await get(app, '/v1/agent/health/service/name/web');
    assert.equal(byName.status, 503, 'the worst of its instances');
    assert.deepEqual((byName.json as Json[]).map((e) => e.AggregatedStatus), ['passing', 'critical']);
    const text = await get(app, '/v1/agent/health/service/id/web-1?format=text');
    assert.equal(text.body, 'passing');
    assert.equal((await get(app, '/v1/agent/health/service/id/nope')).status, 404);
    assert.equal((await get(app, '/v1/agent/health/service/name/nope')).status, 404);
  });

  it('maintenance mode adds a critical check (taking the instance out of rotation) and removes it', async () => {
    const { app } = await withServices();
    ok(await put(app, '/v1/agent/service/maintenance/web-1?enable=true&reason=deploying'));
    const entries = ok(await get(app, '/v1/health/service/web?passing')).json as Array<{ Service: Json }>;
    assert.deepEqual(entries.map((e) => e.Service.ID), [], 'web-1 is no longer passing');
    const check = (ok(await get(app, '/v1/agent/checks')).json as Record<string, Json>)['_service_maintenance:web-1'];
    assert.equal(check.Status, 'critical');
    assert.equal(check.Notes, 'deploying');
    assert.equal(check.Type, 'maintenance');
    assert.equal((await put(app, '/v1/agent/check/pass/_service_maintenance:web-1')).status, 400, 'not a TTL check');
    ok(await put(app, '/v1/agent/service/maintenance/web-1?enable=false'));
    assert.deepEqual((ok(await get(app, '/v1/health/service/web?passing')).json as Array<{ Service: Json }>).map((e) => e.Service.ID), ['web-1']);
    assert.equal((await put(app, '/v1/agent/service/maintenance/nope?enable=true')).status, 404);
    const missing = await put(app, '/v1/agent/service/maintenance/web-1');
    assert.equal(missing.status, 400);
    assert.equal((missing.json as { field: string }).field, 'enable');
  });

  it('/v1/catalog/register and /v1/catalog/deregister: external services with checks whose status the registrant sets', async () => {
    const { app } = await withServices();
    const body = {
      Node: 'external-node',
      Address: '127.0.0.5',
      Service: { ID: 'search-1', Service: 'search', Port: 9200, Tags: ['es'] },
      Check: { CheckID: 'search-1-health', Name: 'ES health', Status: 'passing', Output: 'green', ServiceID: 'search-1' },
    };
    assert.equal(ok(await put(app, '/v1/catalog/register', body)).body, 'true');
    const [entry] = ok(await get(app, '/v1/health/service/search')).json as Array<{ Service: Json; Checks: Json[] }>;
    assert.equal(entry.Service.Address, '127.0.0.5', 'the node Address when the service has none');
    assert.equal(entry.Checks[0].Status, 'passing');
    assert.equal(entry.Checks[0].Output, 'green');
    assert.equal(entry.Checks[0].Type, 'external');
    // consul-esm reports a new status by registering again: it applies (an agent check would keep its own).
    ok(await put(app, '/v1/catalog/register', { ...body, Check: { ...body.Check, Status: 'critical', Output: 'red' } }));
    const [again] = ok(await get(app, '/v1/health/service/search')).json as Array<{ Checks: Json[] }>;
    assert.equal(again.Checks[0].Status, 'critical');
    ok(await put(app, '/v1/catalog/deregister', { Node: 'external-node', CheckID: 'search-1-health' }));
    assert.deepEqual((ok(await get(app, '/v1/health/service/search')).json as Array<{ Checks: Json[] }>)[0].Checks, []);
    ok(await put(app, '/v1/catalog/deregister', { Node: 'external-node', ServiceID: 'search-1' }));
    assert.deepEqual(ok(await get(app, '/v1/health/service/search')).json, []);
    const bad = await put(app, '/v1/catalog/register', { Node: 'n', Service: { Service: 'x', Port: 'eighty' } });
    assert.equal(bad.status, 400);
  });
});

describe('Consul API: ?filter=', () => {
  it('filters health, catalog and agent answers by selectors of their own shape', async () => {
    const { app } = await withServices();
    const ids = (json: unknown, pick: (e: Json) => unknown): unknown[] => (json as Json[]).map(pick).sort();
    const health = (q: string) => get(app, `/v1/health/service/web?filter=${encodeURIComponent(q)}`);
    assert.deepEqual(ids(ok(await health('Service.Meta.env == prod')).json, (e) => (e.Service as Json).ID), ['web-1']);
    assert.deepEqual(ids(ok(await health('"v2" in Service.Tags')).json, (e) => (e.Service as Json).ID), ['web-2']);
    assert.deepEqual(ids(ok(await health('Service.Tags not contains v2 and Service.Port == 8001')).json, (e) => (e.Service as Json).ID), ['web-1']);
    assert.deepEqual(ids(ok(await health('Checks.Status == critical')).json, (e) => (e.Service as Json).ID), ['web-2']);
    assert.deepEqual(ids(ok(await health('not (Service.Meta.env matches "^pr")')).json, (e) => (e.Service as Json).ID), ['web-2']);
    assert.deepEqual(ids(ok(await health('Service.Meta.missing is empty or Service.ID == web-2')).json, (e) => (e.Service as Json).ID), ['web-1', 'web-2']);
    const catalog = ok(await get(app, `/v1/catalog/service/web?filter=${encodeURIComponent('ServiceMeta.env != prod')}`)).json as Json[];
    assert.deepEqual(catalog.map((e) => e.ServiceID), ['web-2']);
    const agent = ok(await get(app, `/v1/agent/services?filter=${encodeURIComponent('Service == db')}`)).json as Json;
    assert.deepEqual(Object.keys(agent), ['db-1']);
    const services = ok(await get(app, `/v1/catalog/services?filter=${encodeURIComponent('ServiceTags contains v1')}`)).json as Json;
    assert.deepEqual(services, { web: ['v1', 'primary'] });
    const checks = ok(await get(app, `/v1/agent/checks?filter=${encodeURIComponent('Status == warning')}`)).json as Json;
    assert.deepEqual(Object.keys(checks), ['service:db-1']);
  });

  it('refuses an expression it cannot parse with 400 naming the position; refuses catastrophic patterns', async () => {
    const { app } = await withServices();
    for (const [expression, position] of [
      ['Service.ID ==', 13],
      ['Service.ID = web', 11],
      ['(Service.ID == web', 18],
      ['Service.ID == web and', 21],
      ['Service.ID ~ web', 11],
      ['"unterminated', 0],
    ] as const) {
      const reply = await get(app, `/v1/health/service/web?filter=${encodeURIComponent(expression)}`);
      assert.equal(reply.status, 400, expression);
      const body = reply.json as { error: string; field: string; message: string };
      assert.equal(body.field, 'filter');
      assert.match(body.message, new RegExp(`at position ${position}$`), `${expression}: ${body.message}`);
    }
    const redos = await get(app, `/v1/health/service/web?filter=${encodeURIComponent('Service.ID matches "(a+)+$"')}`);
    assert.equal(redos.status, 400);
  });
});

describe('Consul API: honest answers', () => {
  it('another datacenter is 500 "No path to datacenter"; ours (any case) is served', async () => {
    const { app } = await withServices();
    const other = await get(app, '/v1/health/service/web?dc=dc2');
    assert.equal(other.status, 500);
    assert.equal(other.body, 'No path to datacenter');
    assert.equal((await get(app, '/v1/kv/x?dc=dc2')).status, 500);
    assert.equal(ok(await get(app, '/v1/health/service/web?dc=DC1')).status, 200);
  });

  it('a Consul endpoint we do not implement is 501 not_implemented; a wrong method 405 with Allow', async () => {
    const { app } = await withServices();
    for (const path of ['/v1/session/list', '/v1/event/list', '/v1/query', '/v1/coordinate/nodes', '/v1/connect/ca/roots', '/v1/operator/raft/configuration', '/v1/txn']) {
      const reply = await get(app, path);
      assert.equal(reply.status, 501, path);
      assert.equal((reply.json as { error: string }).error, 'not_implemented');
      assert.ok(reply.headers['x-consul-index'], `${path} carries X-Consul-Index`);
    }
    const wrong = await app.inject({ method: 'POST', url: '/v1/agent/check/register' });
    assert.equal(wrong.statusCode, 405);
    assert.equal(wrong.headers.allow, 'PUT');
    const kv = await app.inject({ method: 'POST', url: '/v1/kv/a/b' });
    assert.equal(kv.statusCode, 405);
    assert.equal(kv.headers.allow, 'DELETE, GET, HEAD, PUT');
    const deleteLeader = await app.inject({ method: 'DELETE', url: '/v1/status/leader' });
    assert.equal(deleteLeader.statusCode, 405);
    assert.equal((await get(app, '/v1/not-consul')).status, 404);
  });

  it('every /v1 answer carries X-Consul-Index, -KnownLeader and -LastContact, errors included', async () => {
    const { app } = await withServices();
    for (const path of ['/v1/agent/service/nope', '/v1/kv/missing', '/v1/catalog/datacenters', '/v1/health/state/bad', '/v1/nothing']) {
      const reply = await get(app, path);
      assert.ok(Number(reply.headers['x-consul-index']) >= 1, path);
      assert.equal(reply.headers['x-consul-knownleader'], 'true', path);
      assert.equal(reply.headers['x-consul-lastcontact'], '0', path);
    }
  });

  it('parses JSON only on routes that take it: a heartbeat with a non-JSON body is fine, a registration is not', async () => {
    const { app } = await withServices();
    const heartbeat = await app.inject({ method: 'PUT', url: '/v1/agent/check/pass/service:web-2', payload: 'not json', headers: { 'content-type': 'text/plain' } });
    assert.equal(heartbeat.statusCode, 200);
    const registration = await put(app, '/v1/agent/service/register', '{"Name": ');
    assert.equal(registration.status, 400);
    assert.equal((registration.json as { field: string }).field, 'body');
  });
});
