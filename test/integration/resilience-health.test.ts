/**
 * Health in the proxy, end to end over loopback: the ejection cap, the panic threshold,
 * ejected instances coming back, active probes overriding a passing registry, connection
 * draining, WebSocket picks, and the metrics of all of it on /metrics.
 */
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { startAdmin, type AdminServer } from '../../src/roles/admin';
import { freePort } from '../helpers/child';
import { ProxyHarness, instance, metricValue, send, waitFor, type Reply } from '../helpers/proxy-harness';
import { Backend } from '../helpers/backend';

const NO_RETRIES = { attempts: 0 };

let harness: ProxyHarness;
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
const backends: Backend[] = [];

async function startBackends(service: string, count: number): Promise<Backend[]> {
  const started = await Backend.startMany(service, count);
  backends.push(...started);
  await harness.serveFrom(service, started);
  return started;
}

function get(service: string, path = '/'): Promise<Reply> {
  return send(harness, service, path, { agent });
}

/** Sends GETs one by one until `done()` holds; at most `max` of them. */
async function sendUntil(service: string, what: string, done: () => boolean, max = 500): Promise<number> {
  for (let sent = 0; sent < max; sent++) {
    if (done()) return sent;
    await get(service);
  }
  if (done()) return max;
  throw new Error(`${what}: not reached after ${max} requests`);
}

const ejected = (service: string, id: string) => () => harness.upstream(service, id).ejected;

before(async () => {
  harness = await ProxyHarness.start({
    services: {
      cap: { outlierDetection: { consecutive5xx: 3, maxEjectionPercent: 50 }, panicThreshold: 0, retries: NO_RETRIES },
      panic: { outlierDetection: { consecutive5xx: 2, maxEjectionPercent: 100 }, panicThreshold: 50, retries: NO_RETRIES },
      recover: { outlierDetection: { consecutive5xx: 2, baseEjectionTime: 300 }, retries: NO_RETRIES },
      probed: {
        healthCheck: { enabled: true, path: '/health', interval: 50, timeout: 1_000, unhealthyThreshold: 2, healthyThreshold: 3, jitterPercent: 0 },
      },
      'drain-eject': { outlierDetection: { consecutive5xx: 2 }, retries: NO_RETRIES },
      ws: { outlierDetection: { consecutive5xx: 2 }, retries: NO_RETRIES },
    },
  });
});

after(async () => {
  agent.destroy();
  await harness?.stop();
  await Promise.all(backends.map((b) => b.close()));
});

describe('passive ejection', () => {
  it('ejects at most maxEjectionPercent of a service, however many instances fail', async () => {
    const [b0, b1, b2, b3] = await startBackends('cap', 4);
    for (const b of [b0, b1, b2]) b.behaviour = 500;
    const before = await metricValue('switchboard_proxy_ejections_overflow_total', { service: 'cap' });
    const ejectedCount = () => harness.proxy.serviceState('cap')?.upstreams.filter((u) => u.ejected).length ?? 0;
    await sendUntil('cap', 'two ejections', () => ejectedCount() === 2);
    // Keep failing: the third failing instance stays in, the cap is full.
    for (let i = 0; i < 40; i++) await get('cap');
    assert.equal(ejectedCount(), 2, '50 % of 4');
    assert.equal(harness.upstream('cap', b3.id).ejected, false);
    assert.ok((await metricValue('switchboard_proxy_ejections_overflow_total', { service: 'cap' })) > before, 'overflow counted');
  });

  it('an ejected instance comes back after its ejection time once it has recovered', async () => {
    const [, b1] = await startBackends('recover', 3);
    b1.behaviour = 500;
    await sendUntil('recover', 'ejection', ejected('recover', b1.id));
    b1.behaviour = 'ok';
    const servedWhileOut = b1.requests;
    for (let i = 0; i < 10; i++) assert.notEqual((await get('recover')).headers['x-backend'], b1.id);
    assert.equal(b1.requests, servedWhileOut, 'no traffic while ejected');
    await waitFor('the ejection to end', () => !ejected('recover', b1.id)(), 10_000);
    await sendUntil('recover', 'traffic to the returned instance', () => b1.requests > servedWhileOut, 30);
  });
});

describe('panic threshold', () => {
  it('below the threshold traffic spreads over every instance again, and panic is counted', async () => {
    const service = 'panic';
    const bs = await startBackends(service, 4);
    for (const b of bs.slice(0, 3)) b.behaviour = 500;
    const entries = await metricValue('switchboard_proxy_panic_entries_total', { service });
    await sendUntil(service, 'panic', () => harness.proxy.serviceState(service)?.inPanic === true);
    const ejectedIds = harness.proxy.serviceState(service)?.upstreams.filter((u) => u.ejected).map((u) => u.id);
    assert.deepEqual(ejectedIds?.sort(), bs.slice(0, 3).map((b) => b.id).sort());
    const counts = bs.map((b) => b.requests);
    for (let i = 0; i < 40; i++) await get(service);
    bs.forEach((b, i) => assert.ok(b.requests > counts[i], `${b.id} gets traffic in panic`));
    assert.equal(await metricValue('switchboard_proxy_panic_mode', { service }), 1);
    assert.equal(await metricValue('switchboard_proxy_panic_entries_total', { service }), entries + 1);
  });
});

describe('active probes', () => {
  it('take an instance out while the registry says passing, and return it after healthyThreshold successes', async () => {
    const service = 'probed';
    const [, b1] = await startBackends(service, 3);
    const failures = await metricValue('switchboard_proxy_health_probes_total', { service, result: 'failure' });
    b1.healthStatus = 503;
    await waitFor('probes to take b1 out', () => harness.upstream(service, b1.id).probeFailing, 10_000);
    const before = b1.requests;
    for (let i = 0; i < 20; i++) assert.equal((await get(service)).status, 200);
    assert.equal(b1.requests, before, 'no traffic while probes fail');
    assert.ok((await metricValue('switchboard_proxy_health_probes_total', { service, result: 'failure' })) >= failures + 2);

    b1.healthStatus = 200;
    const probesAtRecovery = b1.probes;
    await waitFor('probes to bring b1 back', () => !harness.upstream(service, b1.id).probeFailing, 10_000);
    assert.ok(b1.probes - probesAtRecovery >= 3, `back after ${b1.probes - probesAtRecovery} passing probes`);
    await sendUntil(service, 'traffic to b1 again', () => b1.requests > before, 30);
  });
});

describe('connection draining', () => {
  it('a deregistered instance gets no new requests but finishes its in-flight one', async () => {
    const service = 'drain';
    const [b0, b1] = await startBackends(service, 2);
    const slow = [send(harness, service, '/slow/1'), send(harness, service, '/slow/2')];
    await waitFor('a held request on each instance', () => b0.held.length === 1 && b1.held.length === 1);
    await harness.setService(service, [instance(service, b1.id, b1.port)]);
    const b0Before = b0.requests;
    for (let i = 0; i < 10; i++) assert.equal((await get(service)).headers['x-backend'], b1.id);
    assert.equal(b0.requests, b0Before);
    b0.release();
    b1.release();
    const replies = await Promise.all(slow);
    assert.deepEqual(replies.map((r) => r.status), [200, 200]);
    assert.deepEqual(replies.map((r) => r.headers['x-backend']).sort(), [b0.id, b1.id].sort());
  });

  it('an ejected instance gets no new requests but finishes its in-flight one', async () => {
    const service = 'drain-eject';
    const [b0, b1] = await startBackends(service, 2);
    const slow = send(harness, service, '/slow');
    await waitFor('a held request', () => b0.held.length + b1.held.length === 1);
    const holder = b0.held.length === 1 ? b0 : b1;
    holder.behaviour = 500;
    await sendUntil(service, 'ejection of the busy instance', ejected(service, holder.id));
    holder.release();
    const reply = await slow;
    assert.deepEqual([reply.status, reply.headers['x-backend']], [200, holder.id]);
  });
});

describe('WebSocket', () => {
  it('upgrades go to an available instance, never to an ejected one', async () => {
    const service = 'ws';
    const [b0, b1] = await startBackends(service, 2);
    b0.behaviour = 500;
    await sendUntil(service, 'ejection', ejected(service, b0.id));
    for (let i = 0; i < 4; i++) {
      const { res, socket } = await upgrade(service);
      socket.destroy();
      assert.deepEqual([res.statusCode, res.headers['x-backend']], [101, b1.id]);
    }
  });
});

describe('metrics', () => {
  let admin: AdminServer;
  before(async () => {
    admin = await startAdmin({ listen: '127.0.0.1:0', isReady: () => true, logger: silentLogger() });
  });
  after(() => admin?.close());

  it('retries, ejections, probes, panic and overload appear on /metrics', async () => {
    const [live] = await startBackends('retried', 1);
    await harness.setService('retried', [instance('retried', 'dead', await freePort()), instance('retried', live.id, live.port)]);
    for (let i = 0; i < 4; i++) assert.equal((await get('retried')).status, 200);
    const text = await scrape(admin.address);
    assert.match(text, /switchboard_proxy_retries_total\{service="retried",reason="connect_failure"\} [1-9]/);
    assert.match(text, /switchboard_proxy_ejections_total\{service="cap",reason="consecutive_5xx"\} [1-9]/);
    assert.match(text, /switchboard_proxy_ejections_overflow_total\{service="cap"\} [1-9]/);
    assert.match(text, /switchboard_proxy_health_probes_total\{service="probed",result="failure"\} [1-9]/);
    assert.match(text, /switchboard_proxy_panic_mode\{service="panic"\} 1/);
    assert.match(text, /switchboard_proxy_panic_entries_total\{service="panic"\} [1-9]/);
    assert.match(text, /# TYPE switchboard_proxy_overload_rejections_total counter/);
    assert.match(text, /# TYPE switchboard_proxy_retry_budget_exhausted_total counter/);
  });
});

function upgrade(service: string): Promise<{ res: IncomingMessage; socket: Socket }> {
  const { host, port } = harness.address;
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path: '/ws', agent: false, headers: { host: `${service}.svc`, connection: 'Upgrade', upgrade: 'websocket' } });
    req.on('upgrade', (res, socket) => resolve({ res, socket }));
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

function scrape(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(`http://${address}/metrics`, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}
