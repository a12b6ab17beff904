/**
 * ACL tokens on the API (inject): Consul's token sources, default deny, policies and service
 * identities, filtered reads, 403 "Permission denied", bootstrap once, deletion, hashes at rest.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { startHarness, type Harness } from './harness';

const ROOT = 'root-secret-0123456789';

async function call(app: FastifyInstance, method: 'GET' | 'PUT' | 'DELETE', url: string, token?: string, payload?: unknown) {
  const headers = token === undefined ? {} : { 'x-consul-token': token };
  const reply = await app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: reply.statusCode, json: reply.body === '' ? undefined : (JSON.parse(reply.body) as unknown), headers: reply.headers };
}

describe('ACL tokens', () => {
  let h: Harness;
  let webToken = '';
  before(async () => {
    h = await startHarness({ acl: { enabled: true, tokens: { initialManagement: ROOT } } });
    const policy = await call(h.app, 'PUT', '/v1/acl/policy', ROOT, { Name: 'web-writer', Rules: 'service "web" { policy = "write" }\nservice_prefix "" { policy = "read" }' });
    assert.equal(policy.status, 200);
    const token = await call(h.app, 'PUT', '/v1/acl/token', ROOT, { Description: 'web', Policies: [{ Name: 'web-writer' }] });
    assert.equal(token.status, 200);
    webToken = (token.json as { SecretID: string }).SecretID;
    assert.equal((await call(h.app, 'PUT', '/v1/agent/service/register', ROOT, { Name: 'db', ID: 'db-1', Port: 5432 })).status, 200);
  });
  after(() => h.close());

  it('an anonymous write is denied (default deny) with 403 Permission denied, and nothing is written', async () => {
    const rev = h.view.rev;
    const reply = await call(h.app, 'PUT', '/v1/agent/service/register', undefined, { Name: 'web', Port: 80 });
    assert.equal(reply.status, 403);
    assert.match((reply.json as { message: string }).message, /^Permission denied/);
    assert.equal(h.view.rev, rev);
  });

  it('an anonymous read is filtered, not refused, and says so', async () => {
    const reply = await call(h.app, 'GET', '/v1/catalog/services');
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, {});
    assert.equal(reply.headers['x-consul-results-filtered-by-acls'], 'true');
  });

  it('the token is read from ?token=, X-Consul-Token and Authorization: Bearer', async () => {
    const body = { Name: 'web', ID: 'web-1', Port: 80 };
    assert.equal((await h.app.inject({ method: 'PUT', url: `/v1/agent/service/register?token=${webToken}`, payload: body })).statusCode, 200);
    assert.equal((await h.app.inject({ method: 'PUT', url: '/v1/agent/service/register', headers: { 'x-consul-token': webToken }, payload: body })).statusCode, 200);
    assert.equal((await h.app.inject({ method: 'PUT', url: '/v1/agent/service/register', headers: { authorization: `Bearer ${webToken}` }, payload: body })).statusCode, 200);
  });

  it('an unknown token is 403 "ACL not found"', async () => {
    const reply = await call(h.app, 'GET', '/v1/catalog/services', 'no-such-token');
    assert.equal(reply.status, 403);
    assert.equal((reply.json as { message: string }).message, 'ACL not found');
  });

  it("a web-only writer may not register, deregister or heartbeat another service's instances", async () => {
    assert.equal((await call(h.app, 'PUT', '/v1/agent/service/register', webToken, { Name: 'db', ID: 'db-2', Port: 5433 })).status, 403);
    assert.equal((await call(h.app, 'PUT', '/v1/agent/service/deregister/db-1', webToken)).status, 403);
    assert.ok(h.view.instance('db-1'), 'db-1 is still there');
  });

  it('a read-everything token sees every service, without the filtered header', async () => {
    const reply = await call(h.app, 'GET', '/v1/catalog/services', webToken);
    assert.deepEqual(Object.keys(reply.json as object).sort(), ['db', 'web']);
    assert.equal(reply.headers['x-consul-results-filtered-by-acls'], undefined);
  });

  it('a urlprefix- route another service claims is not for the taking (management may move it)', async () => {
    assert.equal((await call(h.app, 'PUT', '/v1/agent/service/register', ROOT, { Name: 'db', ID: 'db-1', Port: 5432, Tags: ['urlprefix-/data'] })).status, 200);
    const taken = await call(h.app, 'PUT', '/v1/agent/service/register', webToken, { Name: 'web', ID: 'web-1', Port: 80, Tags: ['urlprefix-/data'] });
    assert.equal(taken.status, 403);
    assert.equal((await call(h.app, 'PUT', '/v1/agent/service/register', webToken, { Name: 'web', ID: 'web-1', Port: 80, Tags: ['urlprefix-/web'] })).status, 200);
  });

  it('a service identity token writes its own service and reads the rest', async () => {
    const made = await call(h.app, 'PUT', '/v1/acl/token', ROOT, { ServiceIdentities: [{ ServiceName: 'api' }] });
    const secret = (made.json as { SecretID: string }).SecretID;
    assert.equal((await call(h.app, 'PUT', '/v1/agent/service/register', secret, { Name: 'api', Port: 81 })).status, 200);
    assert.equal((await call(h.app, 'PUT', '/v1/agent/service/register', secret, { Name: 'web', Port: 81 })).status, 403);
    const self = await call(h.app, 'GET', '/v1/acl/token/self', secret);
    assert.deepEqual((self.json as { ServiceIdentities: unknown }).ServiceIdentities, [{ ServiceName: 'api' }]);
  });

  it('only management creates policies and tokens; a deleted token stops working', async () => {
    assert.equal((await call(h.app, 'PUT', '/v1/acl/token', webToken, { Description: 'escalate' })).status, 403);
    const made = await call(h.app, 'PUT', '/v1/acl/token', ROOT, { Policies: [{ Name: 'web-writer' }] });
    const { AccessorID, SecretID } = made.json as { AccessorID: string; SecretID: string };
    assert.equal((await call(h.app, 'GET', '/v1/catalog/services', SecretID)).status, 200);
    assert.equal((await call(h.app, 'DELETE', `/v1/acl/token/${AccessorID}`, ROOT)).status, 200);
    assert.equal((await call(h.app, 'GET', '/v1/catalog/services', SecretID)).status, 403);
  });

  it('keeps only hashes of secrets in the store', async () => {
    const { kvs } = await h.store.range('acl/');
    assert.ok(kvs.length > 0);
    for (const kv of kvs) assert.ok(!kv.value.includes(webToken), kv.key);
  });

  it('bootstrap gives one management token, once', async () => {
    const first = await call(h.app, 'PUT', '/v1/acl/bootstrap');
    assert.equal(first.status, 200);
    const secret = (first.json as { SecretID: string }).SecretID;
    assert.equal((await call(h.app, 'PUT', '/v1/agent/service/register', secret, { Name: 'anything', Port: 1 })).status, 200);
    assert.equal((await call(h.app, 'PUT', '/v1/acl/bootstrap')).status, 403);
  });

  it('with ACLs on, protected mode gives way: a remote client with a token may write', async () => {
    const reply = await h.app.inject({ method: 'PUT', url: '/v1/agent/service/register', headers: { 'x-consul-token': webToken }, payload: { Name: 'web', ID: 'web-9', Address: '10.0.0.9', Port: 80 }, remoteAddress: '10.1.2.3' });
    assert.equal(reply.statusCode, 200);
  });
});

describe('ACL policies and tokens from the configuration', () => {
  let h: Harness;
  const PROXY_SECRET = 'proxy-secret-from-the-config';
  before(async () => {
    h = await startHarness({
      acl: {
        enabled: true,
        policies: [{ name: 'readers', rules: 'service_prefix "" { policy = "read" }', description: '' }],
        staticTokens: [{ secret: PROXY_SECRET, description: 'proxies', policies: ['readers'], serviceIdentities: [] }],
      },
    });
  });
  after(() => h.close());

  it('a configured token reads through its configured policy, may not write, and cannot be deleted', async () => {
    assert.equal((await call(h.app, 'GET', '/v1/catalog/services', PROXY_SECRET)).status, 200);
    assert.equal((await call(h.app, 'PUT', '/v1/agent/service/register', PROXY_SECRET, { Name: 'web', Port: 80 })).status, 403);
    const self = await call(h.app, 'GET', '/v1/acl/token/self', PROXY_SECRET);
    assert.deepEqual((self.json as { Policies: Array<{ Name: string }> }).Policies.map((p) => p.Name), ['readers']);
    const bootstrap = await call(h.app, 'PUT', '/v1/acl/bootstrap');
    const root = (bootstrap.json as { SecretID: string }).SecretID;
    assert.equal((await call(h.app, 'DELETE', '/v1/acl/token/static:0', root)).status, 404);
    assert.equal((await call(h.app, 'GET', '/v1/catalog/services', PROXY_SECRET)).status, 200);
  });
});
