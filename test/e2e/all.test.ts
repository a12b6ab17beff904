/**
 * `switchboard all` end to end: the real CLI in a child process, real backends, registration
 * through the npm `consul` client, traffic through the proxy.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Consul from 'consul';
import { Backend, type BackendReply } from '../helpers/backend';
import { jsonOf, request, runSwitchboard, SwitchboardProcess, waitFor, type HttpResult } from '../helpers/switchboard-process';

function viaHost(sb: SwitchboardProcess, service: string, pathAndQuery = '/'): Promise<HttpResult> {
  return request(sb.url('proxy', pathAndQuery), { headers: { Host: `${service}.svc` } });
}

function backendOf(result: HttpResult): string | undefined {
  return result.status === 200 ? (jsonOf(result) as BackendReply).backend : undefined;
}

function errorCodeOf(result: HttpResult): unknown {
  return (jsonOf(result) as { error?: unknown } | undefined)?.error;
}

async function register(consul: Consul, backend: Backend, service: string, extra: Record<string, unknown> = {}): Promise<void> {
  await consul.agent.service.register({ name: service, id: backend.id, address: '127.0.0.1', port: backend.port, ...extra });
}

describe('switchboard all: one running process', () => {
  let sb: SwitchboardProcess;
  let consul: Consul;
  const backends: Backend[] = [];

  async function backend(id: string): Promise<Backend> {
    const b = await Backend.start(id);
    backends.push(b);
    return b;
  }

  before(async () => {
    // "web" checks the split by Consul Weights alone: latency-aware weights would (rightly)
    // tilt it towards whichever instance happens to answer faster on a busy machine.
    const config = path.join(mkdtempSync(path.join(os.tmpdir(), 'sb-all-')), 'switchboard.yaml');
    writeFileSync(config, 'proxy:\n  services:\n    web:\n      latencyAware: { enabled: false }\n');
    sb = await SwitchboardProcess.start({ args: ['--config', config] });
    consul = new Consul(sb.apiEndpoint());
  });

  after(async () => {
    await sb?.cleanup();
    await Promise.all(backends.map((b) => b.close()));
  });

  test('logs one listening line per listener and answers /healthz and /readyz', async () => {
    const listening = sb.logs().filter((l) => l.msg === 'listening');
    assert.deepEqual(listening.map((l) => l.listener).sort(), ['admin', 'api', 'dns', 'proxy']);
    for (const l of listening.filter((line) => line.listener !== 'dns')) assert.equal(l.url, `http://${String(l.address)}`);
    assert.equal((await request(sb.url('admin', '/healthz'))).status, 200);
    await waitFor('/readyz to turn 200', async () => (await request(sb.url('admin', '/readyz'))).status === 200);
  });

  test('a service registered with the consul client is routed by Host and by path prefix', async () => {
    const users = await backend('users-1');
    await register(consul, users, 'users');
    await waitFor('users.svc to reach users-1', async () => backendOf(await viaHost(sb, 'users', '/hello')) === 'users-1');

    const byHost = jsonOf(await viaHost(sb, 'users', '/hello?x=1')) as BackendReply;
    assert.equal(byHost.path, '/hello?x=1');

    const byPrefix = await request(sb.url('proxy', '/users/profile/42'));
    assert.equal(byPrefix.status, 200);
    const reply = jsonOf(byPrefix) as BackendReply;
    assert.equal(reply.backend, 'users-1');
    assert.equal(reply.path, '/profile/42', 'the /users prefix is stripped by default');
    assert.ok(reply.headers['x-forwarded-for'], 'X-Forwarded-For is set');
    assert.ok(reply.headers['x-request-id'], 'a request id is generated');
  });

  test('a urlprefix- tag adds a prefix route', async () => {
    const orders = await backend('orders-1');
    await register(consul, orders, 'orders', { tags: ['urlprefix-/api/orders'] });
    await waitFor('/api/orders to reach orders-1', async () => backendOf(await request(sb.url('proxy', '/api/orders/7'))) === 'orders-1');
  });

  test('traffic is split by Weights.Passing across two instances', async () => {
    const heavy = await backend('web-heavy');
    const light = await backend('web-light');
    // The npm consul client does not send Weights, so these two use the HTTP API directly.
    for (const [b, weight] of [
      [heavy, 3],
      [light, 1],
    ] as const) {
      const body = JSON.stringify({ ID: b.id, Name: 'web', Address: '127.0.0.1', Port: b.port, Weights: { Passing: weight, Warning: 1 } });
      assert.equal((await request(sb.url('api', '/v1/agent/service/register'), { method: 'PUT', body })).status, 200);
    }
    await waitFor('both web instances in rotation', async () => backendOf(await viaHost(sb, 'web')) === 'web-light');

    const counts = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const id = backendOf(await viaHost(sb, 'web')) ?? 'error';
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const heavyCount = counts.get('web-heavy') ?? 0;
    assert.equal(heavyCount + (counts.get('web-light') ?? 0), 40, `every request answered: ${JSON.stringify([...counts])}`);
    assert.ok(heavyCount >= 28 && heavyCount <= 32, `weight 3:1 gives about 30 of 40, got ${heavyCount}`);
  });

  test('a deregistered service leaves rotation', async () => {
    const gone = await backend('gone-1');
    await register(consul, gone, 'gone');
    await waitFor('gone.svc routable', async () => backendOf(await viaHost(sb, 'gone')) === 'gone-1');
    await consul.agent.service.deregister('gone-1');
    await waitFor('gone.svc to answer unknown_service or no_healthy_upstream', async () => {
      const res = await viaHost(sb, 'gone');
      return (res.status === 404 && errorCodeOf(res) === 'unknown_service') || (res.status === 503 && errorCodeOf(res) === 'no_healthy_upstream');
    });
    const before = gone.requests;
    await viaHost(sb, 'gone');
    assert.equal(gone.requests, before, 'the deregistered backend gets no more traffic');
  });

  test('an instance whose TTL check lapses leaves rotation', async () => {
    const ttl = await backend('ttl-1');
    await register(consul, ttl, 'ttl', { check: { ttl: '1s', checkid: 'ttl-1-check' } });
    // A TTL check starts critical until its first pass (Consul semantics).
    await waitFor('ttl.svc registered but not healthy', async () => {
      const res = await viaHost(sb, 'ttl');
      return res.status === 503 && errorCodeOf(res) === 'no_healthy_upstream';
    });
    // Pass on every poll: on a slow machine one pass could lapse before we look.
    await waitFor('ttl.svc healthy after a pass', async () => {
      await consul.agent.check.pass('ttl-1-check');
      return backendOf(await viaHost(sb, 'ttl')) === 'ttl-1';
    });
    // No more passes: the check goes critical after ~1s and the instance leaves rotation.
    await waitFor('ttl.svc to leave rotation after its TTL', async () => (await viaHost(sb, 'ttl')).status === 503);
    const health = (await consul.health.service('ttl')) as Array<{ Checks: Array<{ CheckID: string; Status: string }> }>;
    assert.equal(health[0].Checks.find((c) => c.CheckID === 'ttl-1-check')?.Status, 'critical');
  });

  test('unknown services get 404 unknown_service', async () => {
    const res = await viaHost(sb, 'nobody-here');
    assert.equal(res.status, 404);
    assert.equal(errorCodeOf(res), 'unknown_service');
  });

  test('/metrics has request counts by service and status class, the catalog revision and process metrics', async () => {
    await waitFor('users.svc routable', async () => backendOf(await viaHost(sb, 'users')) === 'users-1');
    const text = (await request(sb.url('admin', '/metrics'))).body;
    assert.match(text, /^switchboard_proxy_requests_total\{[^}]*service="users"[^}]*code_class="2xx"[^}]*\} [1-9]/m);
    assert.match(text, /^switchboard_proxy_requests_total\{[^}]*service="ttl"[^}]*code_class="5xx"[^}]*\} [1-9]/m);
    assert.match(text, /^switchboard_proxy_request_duration_seconds_bucket\{/m);
    assert.match(text, /^switchboard_proxy_catalog_revision(\{[^}]*\})? [1-9]/m);
    assert.match(text, /^process_resident_memory_bytes /m);
  });

  test('a second process on the same data dir fails with a clear lock error', async () => {
    const second = await runSwitchboard([
      'all',
      '--proxy-listen=127.0.0.1:0',
      '--api-listen=127.0.0.1:0',
      '--admin-listen=127.0.0.1:0',
      '--dns-listen=127.0.0.1:0',
      `--data-dir=${sb.dataDir}`,
    ]);
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr.trim(), new RegExp(`^switchboard: data dir .*${path.basename(sb.dataDir)}.* in use by pid ${sb.pid}`));
    assert.ok(sb.running(), 'the first process keeps running');
    assert.ok(existsSync(path.join(sb.dataDir, 'LOCK')), 'the failed start did not remove the owner’s lock');
  });
});

describe('switchboard all: durability', () => {
  test('after SIGKILL right after acknowledged registrations, a restart on the same data dir has every one', async () => {
    const first = await SwitchboardProcess.start();
    let second: SwitchboardProcess | undefined;
    try {
      const consul = new Consul(first.apiEndpoint());
      const ids = Array.from({ length: 25 }, (_, i) => `durable-${i}`);
      await Promise.all(ids.map((id, i) => consul.agent.service.register({ name: `svc${i % 5}`, id, address: '127.0.0.1', port: 10_000 + i })));
      first.signal('SIGKILL');
      assert.equal((await first.waitForExit()).signal, 'SIGKILL');

      second = await SwitchboardProcess.start({ dataDir: first.dataDir });
      const services = (await new Consul(second.apiEndpoint()).agent.service.list()) as Record<string, { Port: number }>;
      assert.deepEqual(Object.keys(services).filter((id) => id.startsWith('durable-')).sort(), [...ids].sort());
      assert.equal(services['durable-7'].Port, 10_007);
    } finally {
      await second?.cleanup();
      await first.cleanup();
    }
  });
});

describe('switchboard all: graceful shutdown', () => {
  test('SIGTERM lets an in-flight request finish, refuses new connections and exits 0', async () => {
    const slow = await Backend.start('slow-1');
    const sb = await SwitchboardProcess.start({ args: ['--drain=10s'] });
    try {
      await register(new Consul(sb.apiEndpoint()), slow, 'slow');
      await waitFor('slow.svc routable', async () => backendOf(await viaHost(sb, 'slow')) === 'slow-1');

      const inFlight = viaHost(sb, 'slow', '/slow');
      await waitFor('the backend to hold the slow request', () => slow.held.length === 1);
      sb.signal('SIGTERM');
      await waitFor('the proxy to stop accepting', async () => {
        try {
          await viaHost(sb, 'slow');
          return false;
        } catch (err) {
          return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
        }
      });
      assert.ok(sb.running(), 'still draining while a request is in flight');
      slow.release();

      const res = await inFlight;
      assert.equal(res.status, 200);
      assert.equal(backendOf(res), 'slow-1');
      assert.deepEqual(await sb.waitForExit(), { code: 0, signal: null });
      assert.ok(!existsSync(path.join(sb.dataDir, 'LOCK')), 'the data dir lock is released');
    } finally {
      await sb.cleanup();
      await slow.close();
    }
  });
});
