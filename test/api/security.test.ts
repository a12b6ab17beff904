/**
 * What keeps a stranger from taking over a service through the registry API: protected mode,
 * the Host check (DNS rebinding), the header cap, one name per service whatever its case.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { get, ok, register, startHarness, type Harness } from './harness';

describe('protected mode (the default)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it('refuses writes from a non-loopback client with 403 saying how to open it, and writes nothing', async () => {
    const rev = h.view.rev;
    const reply = await h.app.inject({ method: 'PUT', url: '/v1/agent/service/register', payload: { Name: 'payments', Address: '10.9.9.9', Port: 80 }, remoteAddress: '10.1.2.3' });
    assert.equal(reply.statusCode, 403);
    assert.equal(reply.json().error, 'forbidden');
    assert.match(reply.json().message, /protectedMode/);
    assert.equal(h.view.rev, rev);
    for (const url of ['/v1/agent/service/deregister/web', '/v1/agent/check/pass/service:web']) {
      assert.equal((await h.app.inject({ method: 'PUT', url, remoteAddress: '192.0.2.7' })).statusCode, 403, url);
    }
  });

  it('serves reads to anyone, and writes to loopback clients (IPv4, IPv6, mapped)', async () => {
    assert.equal((await h.app.inject({ method: 'GET', url: '/v1/catalog/services', remoteAddress: '10.1.2.3' })).statusCode, 200);
    for (const remoteAddress of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      const reply = await h.app.inject({ method: 'PUT', url: '/v1/agent/service/register', payload: { Name: 'web', Port: 9000 }, remoteAddress });
      assert.equal(reply.statusCode, 200, remoteAddress);
    }
  });
});

describe('protected mode off', () => {
  it('accepts writes from any address', async () => {
    const h = await startHarness({ api: { protectedMode: false } });
    try {
      const reply = await h.app.inject({ method: 'PUT', url: '/v1/agent/service/register', payload: { Name: 'web', Address: '10.0.0.5', Port: 80 }, remoteAddress: '10.1.2.3' });
      assert.equal(reply.statusCode, 200);
    } finally {
      await h.close();
    }
  });
});

describe('clients the API does not serve', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ api: { allowedHosts: ['consul.internal'] } });
  });
  after(() => h.close());

  const hosts: Array<[string, number]> = [
    ['127.0.0.1:8500', 200],
    ['[::1]:8500', 200],
    ['10.0.0.4', 200],
    ['localhost:8500', 200],
    ['CONSUL.internal:8500', 200],
    ['consul.internal.', 200],
    ['attacker.example:8500', 403],
    ['127.0.0.1.nip.io', 403],
  ];
  for (const [host, status] of hosts) {
    it(`Host ${host} → ${status}`, async () => {
      const reply = await h.app.inject({ method: 'GET', url: '/v1/catalog/services', headers: { host } });
      assert.equal(reply.statusCode, status);
      if (status === 403) assert.equal(reply.json().field, 'host');
    });
  }

  it('more than 100 header lines → 431, connection closed', async () => {
    const headers = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`x-h${i}`, 'v']));
    const reply = await h.app.inject({ method: 'GET', url: '/v1/catalog/services', headers });
    assert.equal(reply.statusCode, 431);
    assert.equal(reply.json().error, 'too_many_headers');
    assert.equal(reply.headers.connection, 'close');
  });
});

describe('one service per name, whatever its case', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it('USERS registers into users; reads by either spelling see one service', async () => {
    ok(await register(h.app, { Name: 'users', ID: 'real-1', Port: 9001 }));
    ok(await register(h.app, { Name: 'USERS', ID: 'impostor', Port: 9002 }));
    assert.deepEqual(Object.keys(ok(await get(h.app, '/v1/catalog/services')).json as object), ['users']);
    const ids = (name: string) => get(h.app, `/v1/catalog/service/${name}`).then((r) => (r.json as Array<{ ServiceID: string }>).map((i) => i.ServiceID).sort());
    assert.deepEqual(await ids('users'), ['impostor', 'real-1']);
    assert.deepEqual(await ids('Users'), ['impostor', 'real-1']);
  });
});

describe('write rate limit (api.writeRateLimit)', () => {
  it('lets a burst through, then answers 429 with Retry-After; another client has its own bucket', async () => {
    const h = await startHarness({ api: { writeRateLimit: 1, writeBurst: 2 } });
    try {
      const write = (remoteAddress = '127.0.0.1') =>
        h.app.inject({ method: 'PUT', url: '/v1/agent/service/register', payload: { Name: 'web', Port: 80 }, remoteAddress });
      assert.equal((await write()).statusCode, 200);
      assert.equal((await write()).statusCode, 200);
      const limited = await write();
      assert.equal(limited.statusCode, 429);
      assert.equal(limited.json().error, 'too_many_requests');
      assert.equal(limited.headers['retry-after'], '1');
      assert.equal((await write('127.0.0.2')).statusCode, 200);
      assert.equal((await h.app.inject({ method: 'GET', url: '/v1/catalog/services' })).statusCode, 200, 'reads are not limited');
    } finally {
      await h.close();
    }
  });
});

describe('blocking queries per client (api.maxBlockingQueriesPerClient)', () => {
  it('parks up to the cap; the next is 429 until one returns', async () => {
    const h = await startHarness({ api: { maxBlockingQueriesPerClient: 1 } });
    try {
      const index = Number((await h.app.inject({ method: 'GET', url: '/v1/catalog/services' })).headers['x-consul-index']);
      // Two at once: whichever comes second finds the one slot taken.
      const both = await Promise.all([1, 2].map(() => h.app.inject({ method: 'GET', url: `/v1/catalog/services?index=${index}&wait=300ms` })));
      assert.deepEqual(both.map((r) => r.statusCode).sort(), [200, 429]);
      assert.equal((await h.app.inject({ method: 'GET', url: `/v1/catalog/services?index=${index}&wait=10ms` })).statusCode, 200, 'the slot was given back');
    } finally {
      await h.close();
    }
  });
});
