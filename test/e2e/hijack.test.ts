/**
 * A hijack attempt on `switchboard all` with ACLs on: an impostor holding a token for its own
 * service tries to take over `payments` — registering into it, under a case variant of its
 * name, claiming every path or payments' Host, deregistering the real instance, pointing the
 * proxy at the registry API itself. Every attempt is refused and the proxy keeps routing to
 * the real instance.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Consul from 'consul';
import { Backend, type BackendReply } from '../helpers/backend';
import { jsonOf, request, SwitchboardProcess, waitFor } from '../helpers/switchboard-process';

const ROOT = 'management-token-for-the-hijack-test';

describe('switchboard all with ACLs: hijack attempts', () => {
  let sb: SwitchboardProcess;
  const backends: Backend[] = [];
  let impostorToken = '';

  async function put(path: string, token: string, body?: unknown): Promise<number> {
    const reply = await request(sb.url('api', path), { method: 'PUT', headers: { 'x-consul-token': token }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return reply.status;
  }

  const payments = async (): Promise<string | undefined> => {
    const reply = await request(sb.url('proxy', '/charge'), { headers: { Host: 'payments.svc' } });
    return reply.status === 200 ? (jsonOf(reply) as BackendReply).backend : undefined;
  };

  before(async () => {
    sb = await SwitchboardProcess.start({ args: ['--acl-enabled=true'], env: { SWITCHBOARD_ACL_INITIAL_MANAGEMENT_TOKEN: ROOT } });
    const real = await Backend.start('payments-real');
    const evil = await Backend.start('evil');
    backends.push(real, evil);
    assert.equal(await put('/v1/agent/service/register', ROOT, { Name: 'payments', ID: 'payments-1', Address: '127.0.0.1', Port: real.port }), 200);
    const token = await request(sb.url('api', '/v1/acl/token'), {
      method: 'PUT',
      headers: { 'x-consul-token': ROOT },
      body: JSON.stringify({ ServiceIdentities: [{ ServiceName: 'evil' }] }),
    });
    impostorToken = (jsonOf(token) as { SecretID: string }).SecretID;
    assert.equal(await put('/v1/agent/service/register', impostorToken, { Name: 'evil', ID: 'evil-1', Address: '127.0.0.1', Port: evil.port }), 200);
    await waitFor('payments to be routed', async () => (await payments()) === 'payments-real');
  });

  after(async () => {
    await sb?.cleanup();
    await Promise.all(backends.map((b) => b.close()));
  });

  test('every attempt is refused', async () => {
    const evilPort = backends[1].port;
    const attempts: Array<[string, string, unknown, number]> = [
      ['an instance registered into payments', '/v1/agent/service/register', { Name: 'payments', ID: 'evil-2', Address: '127.0.0.1', Port: evilPort }, 403],
      ['a case variant of the name', '/v1/agent/service/register', { Name: 'PAYMENTS', ID: 'evil-3', Address: '127.0.0.1', Port: evilPort }, 403],
      ['a claim of every path', '/v1/agent/service/register', { Name: 'evil', ID: 'evil-1', Address: '127.0.0.1', Port: evilPort, Tags: ['urlprefix-/'] }, 400],
      ["a claim of payments' Host", '/v1/agent/service/register', { Name: 'evil', ID: 'evil-1', Address: '127.0.0.1', Port: evilPort, Tags: ['urlprefix-payments.svc/'] }, 400],
      ['the registry API as a backend', '/v1/agent/service/register', { Name: 'evil', ID: 'evil-1', Address: '127.0.0.1', Port: Number(sb.address('api').split(':').pop()) }, 400],
      ['deregistering the real instance', '/v1/agent/service/deregister/payments-1', undefined, 403],
    ];
    for (const [what, path, body, status] of attempts) assert.equal(await put(path, impostorToken, body), status, what);
  });

  test('the npm consul client works with a token and is refused without one', async () => {
    const [host, port] = sb.address('api').split(':');
    const withToken = new Consul({ host, port: Number(port), defaults: { token: impostorToken } });
    const anonymous = new Consul({ host, port: Number(port) });
    try {
      await withToken.agent.service.register({ name: 'evil', id: 'evil-5', address: '127.0.0.1', port: backends[1].port });
      await assert.rejects(withToken.agent.service.register({ name: 'payments', id: 'evil-6', address: '127.0.0.1', port: backends[1].port }), (err: { statusCode?: number }) => err.statusCode === 403);
      await assert.rejects(anonymous.agent.service.register({ name: 'evil', id: 'evil-7', address: '127.0.0.1', port: backends[1].port }), (err: { statusCode?: number }) => err.statusCode === 403);
      assert.deepEqual(await anonymous.catalog.service.list(), {}, 'default deny: an anonymous reader sees nothing');
      assert.deepEqual(Object.keys(await withToken.catalog.service.list()).sort(), ['evil', 'payments']);
    } finally {
      withToken.destroy();
      anonymous.destroy();
    }
  });

  test('the proxy still routes payments to the real instance only', async () => {
    for (let i = 0; i < 10; i++) assert.equal(await payments(), 'payments-real');
  });
});
