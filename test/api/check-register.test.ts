/**
 * PUT /v1/agent/check/register and /v1/agent/check/deregister/:id (inject): a check added to a
 * registered instance (ServiceID required: there are no node checks here), replaced by ID,
 * removed; script checks through it follow the same rules as in a registration.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHarness, type Harness } from './harness';

async function put(h: Harness, url: string, payload?: object) {
  const reply = await h.app.inject({ method: 'PUT', url, ...(payload === undefined ? {} : { payload }) });
  return { status: reply.statusCode, body: reply.body };
}

describe('agent check register / deregister', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ targets: { enableScriptChecks: true } });
    assert.equal((await put(h, '/v1/agent/service/register', { Name: 'web', ID: 'web-1', Port: 8080, Check: { TTL: '30s', Status: 'passing' } })).status, 200);
  });
  after(() => h.close());

  it('adds a check to the instance, keeping its other checks; the check ID defaults to its Name', async () => {
    assert.equal((await put(h, '/v1/agent/check/register', { Name: 'disk', ServiceID: 'web-1', TTL: '1m', Notes: 'disk space' })).status, 200);
    const checks = h.view.instance('web-1')?.checks ?? [];
    assert.deepEqual(checks.map((c) => c.checkId).sort(), ['disk', 'service:web-1']);
    assert.equal(checks.find((c) => c.checkId === 'disk')?.status, 'critical', 'a new TTL check starts critical, as in Consul');
    assert.equal((await put(h, '/v1/agent/check/pass/disk')).status, 200);
    assert.equal(h.view.instance('web-1')?.checks.find((c) => c.checkId === 'disk')?.status, 'passing');
  });

  it('the same ID again replaces the definition and keeps the status', async () => {
    assert.equal((await put(h, '/v1/agent/check/register', { Name: 'disk', ServiceID: 'web-1', TTL: '2m' })).status, 200);
    const disk = h.view.instance('web-1')?.checks.find((c) => c.checkId === 'disk');
    assert.equal(disk?.ttlMs, 120_000);
    assert.equal(disk?.status, 'passing');
  });

  it('a script check through it (loopback client, script checks on)', async () => {
    assert.equal((await put(h, '/v1/agent/check/register', { Name: 'db-script', CheckID: 'script-1', ServiceID: 'web-1', Args: ['/bin/true'], Interval: '10s' })).status, 200);
    assert.deepEqual(h.view.instance('web-1')?.checks.find((c) => c.checkId === 'script-1')?.args, ['/bin/true']);
  });

  it('deregister removes just that check', async () => {
    assert.equal((await put(h, '/v1/agent/check/deregister/disk')).status, 200);
    assert.deepEqual((h.view.instance('web-1')?.checks ?? []).map((c) => c.checkId).sort(), ['script-1', 'service:web-1']);
    assert.equal((await put(h, '/v1/agent/check/deregister/disk')).status, 404);
  });

  const bad: Array<[string, object, RegExp]> = [
    ['no ServiceID', { Name: 'x', TTL: '10s' }, /"field":"ServiceID"/],
    ['an unknown ServiceID', { Name: 'x', ServiceID: 'nope', TTL: '10s' }, /"field":"ServiceID"/],
    ['no check type', { Name: 'x', ServiceID: 'web-1' }, /TTL, HTTP, TCP or Args/],
    ['an Interval below the minimum', { Name: 'x', ServiceID: 'web-1', TCP: '127.0.0.1:1', Interval: '1ms' }, /"field":"Interval"/],
    ['no Name', { ServiceID: 'web-1', TTL: '10s' }, /Name/],
  ];
  for (const [what, payload, message] of bad) {
    it(`${what}: 400, nothing written`, async () => {
      const rev = h.view.rev;
      const reply = await put(h, '/v1/agent/check/register', payload);
      assert.equal(reply.status, 400, reply.body);
      assert.match(reply.body, message);
      assert.equal(h.view.rev, rev);
    });
  }
});

describe('agent check register: script checks off', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    await put(h, '/v1/agent/service/register', { Name: 'web', ID: 'web-1', Port: 8080 });
  });
  after(() => h.close());

  it('Args is refused with 400 saying how to enable it', async () => {
    const reply = await put(h, '/v1/agent/check/register', { Name: 's', ServiceID: 'web-1', Args: ['/bin/true'], Interval: '10s' });
    assert.equal(reply.status, 400);
    assert.match(reply.body, /"field":"Args"/);
    assert.match(reply.body, /--enable-script-checks=true/);
  });
});
