/**
 * Live reload of `switchboard all` (POST /reload on the admin listener, and SIGHUP): a policy
 * and a route change applied while keep-alive load runs through the proxy — no request fails —
 * an invalid file changes nothing and says which field, and what cannot change live is reported.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Backend } from '../helpers/backend';
import { runLoad } from '../helpers/load';
import { SwitchboardProcess, request, waitFor } from '../helpers/switchboard-process';

const BASE = `proxy:
  services:
    web:
      latencyAware: { enabled: false }
      outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 0 }
      retries: { retryOn: [connect-failure, reset, timeout, gateway-error] }
`;
/** 500s are retried, and /api/… routes to web. */
const NEXT = `proxy:
  routes:
    - { prefix: /api, service: web }
  services:
    web:
      latencyAware: { enabled: false }
      outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 0 }
      retries: { retryOn: [connect-failure, reset, timeout, gateway-error, 5xx] }
`;

describe('live reload: switchboard all', () => {
  let dir = '';
  let file = '';
  let sb: SwitchboardProcess;
  let ok: Backend;
  let broken: Backend;
  let steady: Backend;

  const reload = async () => {
    const reply = await request(sb.url('admin', '/reload'), { method: 'POST' });
    return { status: reply.status, body: JSON.parse(reply.body) as { status: string; applied?: string[]; restartRequired?: string[]; field?: string; message?: string } };
  };
  const statuses = async (n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await request(sb.url('proxy', `/r${i}`), { headers: { host: 'web.svc' } })).status);
    return out;
  };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-reload-'));
    file = path.join(dir, 'switchboard.yaml');
    writeFileSync(file, BASE);
    [ok, broken, steady] = await Promise.all([Backend.start('ok-1'), Backend.start('broken-1'), Backend.start('steady-1')]);
    broken.behaviour = 500;
    sb = await SwitchboardProcess.start({ args: ['--config', file] });
    for (const [b, service] of [[ok, 'web'], [broken, 'web'], [steady, 'steady']] as const) {
      const body = JSON.stringify({ ID: b.id, Name: service, Address: '127.0.0.1', Port: b.port });
      assert.equal((await request(sb.url('api', '/v1/agent/service/register'), { method: 'PUT', body })).status, 200);
    }
    await waitFor('both web instances in rotation', async () => (await statuses(4)).includes(500), 10_000);
  });

  after(async () => {
    await sb?.cleanup();
    await Promise.all([ok, broken, steady].map((b) => b?.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a new policy and a new route apply at once, under load, with no failed request', async () => {
    assert.ok((await statuses(6)).includes(500), 'before: 500s reach clients (5xx not retried)');
    assert.equal((await request(sb.url('proxy', '/api/x'))).status, 404, 'before: no /api route');
    const { host, port } = (() => {
      const a = sb.address('proxy');
      return { host: a.slice(0, a.lastIndexOf(':')), port: Number(a.slice(a.lastIndexOf(':') + 1)) };
    })();
    const load = runLoad({ host, port, hostHeader: 'steady.svc', path: '/steady', total: 1_500, concurrency: 8, idPrefix: 'reload' });
    writeFileSync(file, NEXT);
    const outcome = await reload();
    const result = await load;
    assert.equal(outcome.status, 200, JSON.stringify(outcome.body));
    assert.ok(outcome.body.applied?.includes('proxy.routes') && outcome.body.applied.includes('proxy.services.web'), JSON.stringify(outcome.body));
    assert.deepEqual(outcome.body.restartRequired, []);
    assert.equal(result.failures.length, 0, JSON.stringify(result.failures.slice(0, 3)));
    assert.deepEqual([...new Set(await statuses(6))], [200], 'after: 500s are retried on the other instance');
    assert.equal((await request(sb.url('proxy', '/api/x'))).status, 200, 'after: /api routes to web');
  });

  it('an invalid file changes nothing and names the field', async () => {
    writeFileSync(file, `${NEXT}    extra: 1\nproxy2: {}\n`.replace('proxy:\n  routes:', 'proxy:\n  defaults: { balancer: fastest }\n  routes:'));
    const outcome = await reload();
    assert.equal(outcome.status, 400);
    assert.equal(outcome.body.status, 'rejected');
    assert.match(outcome.body.message ?? '', /balancer|proxy2|extra/);
    assert.deepEqual([...new Set(await statuses(6))], [200], 'the last good configuration still applies');
  });

  it('what cannot change live is reported, and left as it was', async () => {
    writeFileSync(file, `${NEXT}  resyncInterval: 1m\napi:\n  maxWait: 1m\n`);
    const outcome = await reload();
    assert.equal(outcome.status, 200);
    assert.deepEqual(outcome.body.restartRequired?.sort(), ['api', 'proxy.resyncInterval']);
    assert.equal((await request(sb.url('proxy', '/api/x'))).status, 200, 'the rest still applies');
  });

  it('the log level changes for every component', async () => {
    writeFileSync(file, `logLevel: debug\n${NEXT}`);
    const outcome = await reload();
    assert.ok(outcome.body.applied?.includes('logLevel'), JSON.stringify(outcome.body));
    // The proxy's catalog cache logs each applied catalog at debug.
    const body = JSON.stringify({ ID: 'late-1', Name: 'late', Address: '127.0.0.1', Port: ok.port });
    assert.equal((await request(sb.url('api', '/v1/agent/service/register'), { method: 'PUT', body })).status, 200);
    await waitFor('a debug line from the proxy', () => sb.logs().some((l) => l.level === 20 && l.component === 'proxy'), 10_000);
  });

  it('SIGHUP reloads too', async () => {
    writeFileSync(file, BASE);
    sb.signal('SIGHUP');
    await waitFor('the SIGHUP reload to apply', async () => (await statuses(6)).includes(500), 10_000);
    assert.ok(sb.running());
  });
});
