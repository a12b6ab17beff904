/**
 * The web UI's JSON endpoints (/v1/switchboard/ui/…) with proxies' runtime reports fed in,
 * the drain action, the change stream, the static files; and the report parser against
 * what a hostile Redis publisher could send.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { parseReport, type ProxyReport } from '../../src/bus/proxy-report';
import { effectiveWeight, type Instance } from '../../src/catalog/model';
import { EventLog } from '../../src/registry/ui/event-log';
import { RuntimeView } from '../../src/registry/ui/runtime-view';
import { type Harness, get, ok, put, register, startHarness } from './harness';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function report(overrides: Partial<ProxyReport> = {}): ProxyReport {
  return {
    proxy: 'host/127.0.0.1:8080/100',
    address: '127.0.0.1:8080',
    pid: 100,
    rev: 1,
    at: Date.now(),
    services: {
      web: {
        panic: false,
        instances: {
          'web-1': { rps: 120, errorRate: 0, p50: 2, p99: 8, inFlight: 3, weight: 1, baseWeight: 1 },
          'web-2': { rps: 4, errorRate: 1, p50: 1, p99: 1, inFlight: 0, weight: 1, baseWeight: 1, ejected: { reason: 'consecutive_gateway_failure', remainingMs: 23_400 } },
        },
      },
    },
    ...overrides,
  };
}

async function setup(): Promise<{ harness: Harness; runtime: RuntimeView; events: EventLog }> {
  const events = new EventLog();
  const runtime = new RuntimeView(events);
  const harness = await startHarness({ runtime, events });
  h = harness;
  ok(await register(harness.app, { Name: 'web', ID: 'web-1', Address: '127.0.0.1', Port: 8001, Tags: ['v1', 'urlprefix-/shop'] }));
  ok(await register(harness.app, { Name: 'web', ID: 'web-2', Address: '127.0.0.1', Port: 8002 }));
  ok(await register(harness.app, { Name: 'db', ID: 'db-1', Address: '127.0.0.1', Port: 5432, Check: { TTL: '30s' } }));
  return { harness, runtime, events };
}

type Json = Record<string, unknown>;

describe('web UI endpoints', () => {
  it('/v1/switchboard/ui/services: counts by state (ejected from proxy reports), tags, routes, rights', async () => {
    const { harness, runtime } = await setup();
    runtime.accept(report());
    const services = ok(await get(harness.app, '/v1/switchboard/ui/services')).json as Json[];
    const web = services.find((s) => s.name === 'web') as Json;
    assert.deepEqual(web.counts, { passing: 2, warning: 0, critical: 0, ejected: 1, draining: 0, maintenance: 0 });
    assert.deepEqual(web.routes, ['web.svc', '/web/', '/shop']);
    assert.deepEqual(web.tags, ['urlprefix-/shop', 'v1']);
    assert.equal(web.canWrite, true);
    assert.deepEqual((services.find((s) => s.name === 'db') as Json).counts, { passing: 0, warning: 0, critical: 1, ejected: 0, draining: 0, maintenance: 0 });
  });

  it('lists the routes proxies have configured for a service beside its host, path and urlprefix tags', async () => {
    const { harness, runtime } = await setup();
    runtime.accept(report({ routes: [{ service: 'web', host: 'www.example.test' }, { service: 'web', prefix: '/store' }, { service: 'db', prefix: '/db' }] }));
    const web = (ok(await get(harness.app, '/v1/switchboard/ui/services')).json as Json[]).find((s) => s.name === 'web') as Json;
    assert.deepEqual(web.routes, ['web.svc', '/web/', 'www.example.test', '/store', '/shop']);
  });

  it('/v1/switchboard/ui/service/:name: per instance what each proxy sees, the explaining rule, a history', async () => {
    const { harness, runtime } = await setup();
    runtime.accept(report());
    const service = ok(await get(harness.app, '/v1/switchboard/ui/service/web')).json as { instances: Json[]; proxies: Json[] };
    assert.deepEqual(service.proxies, [{ proxy: 'host/127.0.0.1:8080/100', stale: false, panic: false }]);
    const [one, two] = service.instances;
    assert.equal(one.explain, 'passing: full weight 1');
    assert.equal(((one.proxies as Json[])[0] as Json).rps, 120);
    assert.equal((one.history as Json[]).length, 1);
    assert.equal(two.explain, 'ejected by every proxy: consecutive gateway failure, back in 24 s');
    const missing = await get(harness.app, '/v1/switchboard/ui/service/nope');
    assert.equal(missing.status, 404);
  });

  it('explains critical, maintenance, drained, slow start and latency in one line each', async () => {
    const { harness, runtime } = await setup();
    runtime.accept(report({ services: { web: { panic: false, instances: { 'web-1': { inFlight: 0, weight: 0.2, baseWeight: 1, warm: 0.2 }, 'web-2': { inFlight: 0, weight: 0.01, baseWeight: 1, latencyFactor: 0.01 } } } } }));
    let [one, two] = (ok(await get(harness.app, '/v1/switchboard/ui/service/web')).json as { instances: Json[] }).instances;
    assert.equal(one.explain, 'slow start: 20 % of its weight while it warms up');
    assert.equal(two.explain, 'slower than its peers: 1.0 % of its weight');
    ok(await put(harness.app, '/v1/agent/service/maintenance/web-1?enable=true&reason=reboot'));
    ok(await put(harness.app, '/v1/switchboard/drain/web-2?enable=true'));
    [one, two] = (ok(await get(harness.app, '/v1/switchboard/ui/service/web')).json as { instances: Json[] }).instances;
    assert.equal(one.explain, 'maintenance: reboot');
    assert.equal(two.explain, 'drained: no new requests (requests in flight finish)');
    assert.equal(two.drained, true);
    const [db] = (ok(await get(harness.app, '/v1/switchboard/ui/service/db')).json as { instances: Json[] }).instances;
    assert.match(db.explain as string, /^critical: Service 'db' check/);
  });

  it('drain: the instance leaves rotation (effective weight 0) and stays drained across re-registration until undrained', async () => {
    const { harness } = await setup();
    ok(await put(harness.app, '/v1/switchboard/drain/web-1?enable=true'));
    ok(await register(harness.app, { Name: 'web', ID: 'web-1', Address: '127.0.0.1', Port: 8001 }));
    assert.equal(harness.view.instance('web-1')?.drained, true);
    assert.equal(effectiveWeight(harness.view.instance('web-1') as Instance), 0, 'no new requests from any proxy');
    ok(await put(harness.app, '/v1/switchboard/drain/web-1?enable=false'));
    assert.equal(harness.view.instance('web-1')?.drained, undefined);
    assert.equal((await put(harness.app, '/v1/switchboard/drain/nope?enable=true')).status, 404);
    assert.equal(((await put(harness.app, '/v1/switchboard/drain/web-1')).json as { field: string }).field, 'enable');
  });

  it('/v1/switchboard/ui/cluster: registries, store, proxies with how far behind they are, the timeline', async () => {
    const { harness, runtime } = await setup();
    runtime.accept(report({ rev: 1, lastResync: { at: Date.now() - 5000, reason: 'connect' } }));
    ok(await put(harness.app, '/v1/agent/check/fail/service:db-1?note=down'));
    const cluster = ok(await get(harness.app, '/v1/switchboard/ui/cluster')).json as { registries: Json[]; proxies: Json[]; events: Json[]; store: Json };
    assert.deepEqual(cluster.registries, [{ address: '127.0.0.1:8500', leader: true }]);
    assert.equal(cluster.store.healthy, true);
    assert.equal(cluster.store.kind, 'unknown', 'the harness runs the API without a Registry');
    const [proxy] = cluster.proxies;
    assert.equal(proxy.stale, false);
    assert.equal(proxy.workers, 1);
    runtime.accept(report({ proxy: 'host/127.0.0.1:8080/101', pid: 101 }));
    const workers = (ok(await get(harness.app, '/v1/switchboard/ui/cluster')).json as { proxies: Json[] }).proxies.map((p) => p.workers);
    assert.deepEqual(workers, [2, 2], 'two workers of one proxy address');
    assert.ok((proxy.behind as number) > 0, 'the registry is past revision 1');
    assert.deepEqual((proxy.lastResync as Json).reason, 'connect');
    const kinds = cluster.events.map((e) => e.kind);
    assert.ok(kinds.includes('proxy') && kinds.includes('resync') && kinds.includes('ejected'), kinds.join(','));
  });

  it('is ACL-aware: a read-only token sees the service without write rights, and its drain is refused', async () => {
    const harness = await startHarness({
      acl: {
        enabled: true,
        defaultPolicy: 'deny',
        tokens: { initialManagement: 'root-token-0000000000' },
        policies: [{ name: 'viewer', rules: 'service_prefix "" { policy = "read" }', description: '' }],
        staticTokens: [{ secret: 'viewer-token-000000000', description: '', policies: ['viewer'], serviceIdentities: [] }],
      },
    });
    h = harness;
    ok(await register(harness.app, { Name: 'web', ID: 'web-1', Address: '127.0.0.1', Port: 8001 }, '?token=root-token-0000000000'));
    const viewer = '?token=viewer-token-000000000';
    const [web] = ok(await get(harness.app, `/v1/switchboard/ui/services${viewer}`)).json as Json[];
    assert.equal(web.canWrite, false);
    assert.equal((ok(await get(harness.app, `/v1/switchboard/ui/service/web${viewer}`)).json as Json).canWrite, false);
    assert.equal((await put(harness.app, `/v1/switchboard/drain/web-1${viewer}&enable=true`)).status, 403);
    assert.deepEqual(ok(await get(harness.app, '/v1/switchboard/ui/services')).json, [], 'an anonymous reader sees nothing under default deny');
  });

  it('a proxy silent for more than 5 s is shown stale, and its ejections no longer count', async () => {
    let now = 1_000_000;
    const events = new EventLog();
    const runtime = new RuntimeView(events, () => now);
    runtime.accept(report());
    assert.equal(runtime.ejectedSet().has('web\0web-2'), true);
    now += 6_000;
    assert.equal(runtime.list()[0].stale, true);
    assert.equal(runtime.ejectedSet().has('web\0web-2'), false);
    now += 5 * 60_000;
    assert.deepEqual(runtime.list(), [], 'forgotten after five minutes');
  });

  it('the stream sends a change event at once and whenever the catalog moves', async () => {
    const { harness } = await setup();
    await harness.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = harness.app.server.address() as AddressInfo;
    const events: string[] = [];
    const req = http.get({ host: '127.0.0.1', port, path: '/v1/switchboard/ui/stream' });
    const response = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
    assert.equal(response.headers['content-type'], 'text/event-stream; charset=utf-8');
    response.setEncoding('utf8');
    // One listener for the whole stream: a `once` between reads could miss a chunk.
    let wake: (() => void) | undefined;
    response.on('data', (chunk: string) => {
      events.push(...chunk.split('\n\n').filter((e) => e.startsWith('event: change')));
      wake?.();
    });
    const seen = async (n: number): Promise<void> => {
      while (events.length < n) await new Promise<void>((resolve) => (wake = resolve));
    };
    await seen(1);
    ok(await register(harness.app, { Name: 'new', Port: 9000 }));
    await seen(2);
    req.destroy();
    assert.match(events[1], /"rev":\d+/);
  });

  it('serves the UI: /ui redirects to /ui/, index.html with a CSP, the vendored libraries, 404 for anything else', async () => {
    const { harness } = await setup();
    const redirect = await harness.app.inject({ method: 'GET', url: '/ui' });
    assert.equal(redirect.statusCode, 302);
    assert.equal(redirect.headers.location, '/ui/');
    const index = await harness.app.inject({ method: 'GET', url: '/ui/' });
    assert.equal(index.statusCode, 200);
    assert.match(index.headers['content-type'] as string, /text\/html/);
    assert.match(index.headers['content-security-policy'] as string, /default-src 'self'/);
    assert.match(index.body, /app\.js/);
    for (const file of ['app.js', 'style.css', 'vendor/preact.js', 'vendor/hooks.js', 'vendor/htm.js', 'vendor/uPlot.iife.min.js']) {
      assert.equal((await harness.app.inject({ method: 'GET', url: `/ui/${file}` })).statusCode, 200, file);
    }
    assert.doesNotMatch((await harness.app.inject({ method: 'GET', url: '/ui/vendor/hooks.js' })).body, /from\s*"preact"/, 'no bare import left');
    assert.equal((await harness.app.inject({ method: 'GET', url: '/ui/../../package.json' })).statusCode, 404);
    assert.equal((await harness.app.inject({ method: 'GET', url: '/ui/nope.js' })).statusCode, 404);
  });
});

describe('proxy reports off the wire', () => {
  it('accepts a report and refuses what is not one, whatever the bytes', () => {
    const good = report();
    assert.deepEqual(parseReport(JSON.stringify(good)), good);
    for (const bad of [JSON.stringify({ ...report(), routes: [{ host: 'x' }] }), JSON.stringify({ ...report(), routes: 'all' }), '', 'null', '[]', '{}', 'not json', '{"proxy":1}', JSON.stringify({ ...report(), services: [] }), JSON.stringify({ ...report(), pid: 'x' }), JSON.stringify({ ...report(), services: { web: { instances: { a: { weight: 'x', inFlight: 0 } } } } }), 'x'.repeat(5 * 1024 * 1024)]) {
      assert.equal(parseReport(bad), undefined, bad.slice(0, 60));
    }
  });

  it('a flood of reports from made-up proxies is bounded', () => {
    const runtime = new RuntimeView(new EventLog());
    for (let i = 0; i < 1_500; i++) runtime.accept(report({ proxy: `fake-${i}` }));
    assert.equal(runtime.list().length, 1_000);
  });

  it('a report naming __proto__ or constructor services changes nothing else', () => {
    const events = new EventLog();
    const runtime = new RuntimeView(events);
    const hostile = parseReport('{"proxy":"p","address":"a","pid":1,"rev":1,"at":1,"services":{"__proto__":{"panic":true,"instances":{"x":{"inFlight":0,"weight":1}}},"constructor":{"panic":false,"instances":{}}}}');
    assert.ok(hostile !== undefined);
    runtime.accept(hostile);
    assert.equal(({} as Json).panic, undefined, 'Object.prototype untouched');
    assert.deepEqual(runtime.instanceViews('toString', 'x')[0].state, undefined);
  });
});
