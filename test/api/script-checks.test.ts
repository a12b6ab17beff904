/**
 * Script checks (Args) on the API: refused while registry.enableScriptChecks is off (400 that
 * says how to turn it on); when on, accepted from loopback clients or agent:write tokens only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHarness, type Harness } from './harness';

const ROOT = 'root-secret-0123456789';
const SCRIPT = { Name: 'db', ID: 'db-1', Port: 5432, Check: { Args: ['/bin/true'], Interval: '10s' } };

async function register(h: Harness, payload: object, options: { remoteAddress?: string; token?: string } = {}) {
  const reply = await h.app.inject({
    method: 'PUT',
    url: '/v1/agent/service/register',
    payload,
    headers: options.token === undefined ? {} : { 'x-consul-token': options.token },
    ...(options.remoteAddress === undefined ? {} : { remoteAddress: options.remoteAddress }),
  });
  return { status: reply.statusCode, body: reply.body };
}

describe('script checks: off by default', () => {
  let h: Harness;
  before(async () => (h = await startHarness()));
  after(() => h.close());

  it('a registration with Args is refused with 400 naming the field and how to enable it; nothing is written', async () => {
    const rev = h.view.rev;
    const reply = await register(h, SCRIPT);
    assert.equal(reply.status, 400, reply.body);
    assert.match(reply.body, /"field":"Check\.Args"/);
    assert.match(reply.body, /--enable-script-checks=true/);
    assert.equal(h.view.rev, rev);
  });

  it('a shell command line (Script) is never accepted', async () => {
    const reply = await register(h, { ...SCRIPT, Check: { Script: 'curl localhost; rm -rf /', Interval: '10s' } });
    assert.equal(reply.status, 400);
    assert.match(reply.body, /Check\.Script/);
  });
});

describe('script checks: on', () => {
  let h: Harness;
  before(async () => (h = await startHarness({ targets: { enableScriptChecks: true }, api: { protectedMode: false } })));
  after(() => h.close());

  it('from a loopback client: accepted, stored with its Args and shown in the definition', async () => {
    assert.equal((await register(h, SCRIPT)).status, 200);
    const check = h.view.instance('db-1')?.checks[0];
    assert.equal(check?.type, 'script');
    assert.deepEqual(check?.args, ['/bin/true']);
    const health = JSON.parse((await h.app.inject({ method: 'GET', url: '/v1/health/service/db' })).body) as Array<{ Checks: Array<{ Type: string; Definition: { Args: string[] } }> }>;
    assert.equal(health[0].Checks[0].Type, 'script');
    assert.deepEqual(health[0].Checks[0].Definition.Args, ['/bin/true']);
  });

  it("ScriptArgs, Consul's older name, works too", async () => {
    assert.equal((await register(h, { ...SCRIPT, ID: 'db-2', Check: { ScriptArgs: ['/bin/true'], Interval: '10s' } })).status, 200);
    assert.equal(h.view.instance('db-2')?.checks[0].type, 'script');
  });

  it('from another address without ACLs: 403, even with protected mode off', async () => {
    const reply = await register(h, { ...SCRIPT, ID: 'db-3' }, { remoteAddress: '10.1.2.3' });
    assert.equal(reply.status, 403, reply.body);
    assert.match(reply.body, /agent:write/);
    assert.equal(h.view.instance('db-3'), undefined);
  });

  it('Args needs an Interval, and a Timeout within it', async () => {
    assert.match((await register(h, { ...SCRIPT, ID: 'db-4', Check: { Args: ['/bin/true'] } })).body, /Check\.Interval/);
    assert.match((await register(h, { ...SCRIPT, ID: 'db-4', Check: { Args: ['/bin/true'], Interval: '5s', Timeout: '10s' } })).body, /Check\.Timeout/);
    assert.match((await register(h, { ...SCRIPT, ID: 'db-4', Check: { Args: 'rm -rf /', Interval: '5s' } })).body, /Check\.Args/);
  });
});

describe('script checks: ACL tokens', () => {
  let h: Harness;
  let serviceOnly = '';
  let agent = '';
  before(async () => {
    h = await startHarness({ targets: { enableScriptChecks: true }, api: { protectedMode: false }, acl: { enabled: true, tokens: { initialManagement: ROOT } } });
    const mint = async (name: string, rules: string): Promise<string> => {
      const headers = { 'x-consul-token': ROOT };
      assert.equal((await h.app.inject({ method: 'PUT', url: '/v1/acl/policy', headers, payload: { Name: name, Rules: rules } })).statusCode, 200);
      const token = await h.app.inject({ method: 'PUT', url: '/v1/acl/token', headers, payload: { Policies: [{ Name: name }] } });
      return (JSON.parse(token.body) as { SecretID: string }).SecretID;
    };
    serviceOnly = await mint('db-writer', 'service "db" { policy = "write" }');
    agent = await mint('db-agent', 'service "db" { policy = "write" }\nagent_prefix "" { policy = "write" }');
  });
  after(() => h.close());

  it('service:write alone is not enough from another address', async () => {
    const reply = await register(h, SCRIPT, { remoteAddress: '10.1.2.3', token: serviceOnly });
    assert.equal(reply.status, 403, reply.body);
  });

  it('agent:write is', async () => {
    assert.equal((await register(h, SCRIPT, { remoteAddress: '10.1.2.3', token: agent })).status, 200);
  });
});
