/**
 * Overload protection, client timeouts (slowloris) and the retry rules over loopback:
 * which failures are retried, which bodies are replayed, and that a non-idempotent request
 * is never sent twice once it may have reached an upstream.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../helpers/child';
import { ProxyHarness, instance, metricValue, send, waitFor, type Reply } from '../helpers/proxy-harness';
import { Backend } from '../helpers/backend';

/** Deterministic alternation for these tests: nobody gets ejected. */
const NO_EJECTION = { consecutive5xx: 0, consecutiveGatewayFailure: 0 };

let harness: ProxyHarness;
const backends: Backend[] = [];

async function backendsFor(service: string, count: number): Promise<Backend[]> {
  const started = await Backend.startMany(service, count);
  backends.push(...started);
  await harness.serveFrom(service, started);
  return started;
}

/** `a-dead` (nothing listens) sorts first, so round robin sends every other request there. */
async function deadAndLive(service: string): Promise<Backend> {
  const live = await Backend.start(`${service}-live`);
  backends.push(live);
  await harness.setService(service, [instance(service, 'a-dead', await freePort()), instance(service, 'b-live', live.port)]);
  return live;
}

const errorOf = (reply: Reply): string => (JSON.parse(reply.body) as { error: string }).error;
const total = (bs: Backend[]): number => bs.reduce((n, b) => n + b.requests, 0);

before(async () => {
  harness = await ProxyHarness.start({
    timeouts: { response: 800 },
    services: {
      limited: { limits: { maxConcurrent: 2, maxPending: 0 } },
      queued: { limits: { maxConcurrent: 1, maxPending: 1, maxPendingWait: 10_000 } },
      replay: { outlierDetection: NO_EJECTION, retries: { bufferBodyUpTo: 1024 } },
      unavailable: { outlierDetection: NO_EJECTION },
      resets: { outlierDetection: NO_EJECTION },
      hung: { outlierDetection: NO_EJECTION, retries: { perTryTimeout: 100 } },
      deadline: { outlierDetection: NO_EJECTION, retries: { perTryTimeout: 500 } },
      'no-budget': { outlierDetection: NO_EJECTION, retries: { budgetPercent: 0, minRetryConcurrency: 0 } },
      flush: { outlierDetection: NO_EJECTION, retries: { attempts: 0 } },
    },
  });
});

after(async () => {
  await harness?.stop();
  await Promise.all(backends.map((b) => b.close()));
});

describe('overload', () => {
  it('beyond maxConcurrent answers 503 overloaded with Retry-After, and recovers', async () => {
    const [b] = await backendsFor('limited', 1);
    const rejected = await metricValue('switchboard_proxy_overload_rejections_total', { service: 'limited' });
    const held = [send(harness, 'limited', '/slow/1'), send(harness, 'limited', '/slow/2')];
    await waitFor('two held requests', () => b.held.length === 2);
    const reply = await send(harness, 'limited', '/');
    assert.deepEqual([reply.status, errorOf(reply), reply.headers['retry-after']], [503, 'overloaded', '1']);
    assert.equal(b.requests, 2, 'the rejected request never reached the backend');
    assert.equal(await metricValue('switchboard_proxy_overload_rejections_total', { service: 'limited' }), rejected + 1);
    b.release();
    assert.deepEqual((await Promise.all(held)).map((r) => r.status), [200, 200]);
    assert.equal((await send(harness, 'limited', '/')).status, 200);
  });

  it('maxPending queues requests for a slot; beyond it, overloaded', async () => {
    const [b] = await backendsFor('queued', 1);
    const held = send(harness, 'queued', '/slow');
    await waitFor('the held request', () => b.held.length === 1);
    const queued = send(harness, 'queued', '/after');
    await waitFor('a queued request', () => harness.proxy.serviceState('queued')?.pending === 1);
    const rejected = await send(harness, 'queued', '/');
    assert.deepEqual([rejected.status, errorOf(rejected)], [503, 'overloaded']);
    b.release();
    assert.equal((await held).status, 200);
    assert.equal((await queued).status, 200);
    assert.equal(harness.proxy.serviceState('queued')?.active, 0);
  });
});

describe('slowloris', () => {
  let slow: ProxyHarness;
  before(async () => {
    slow = await ProxyHarness.start({ clientTimeouts: { header: 300, request: 800 } });
    const [b] = await Promise.all([Backend.start('slowloris')]);
    backends.push(b);
    await slow.setService('app', [instance('app', b.id, b.port)]);
  });
  after(() => slow?.stop());

  /** Trickles `first` then one `piece` every 50 ms (at most 100); resolves with what came back once the proxy closes. */
  function trickle(first: string, piece: string): Promise<{ answer: string; finished: boolean }> {
    const { host, port } = slow.address;
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, host);
      let answer = '';
      let sent = 0;
      let timer: NodeJS.Timeout | undefined;
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (answer += d));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(timer);
        resolve({ answer, finished: sent >= 100 });
      });
      socket.on('connect', () => {
        socket.write(first);
        timer = setInterval(() => {
          if (sent++ >= 100) {
            clearInterval(timer);
            socket.destroy();
            reject(new Error('the proxy kept waiting for a client that never finished'));
            return;
          }
          socket.write(piece);
        }, 50);
      });
    });
  }

  it('cuts off a client that sends its headers too slowly (408)', async () => {
    const { answer, finished } = await trickle('GET / HTTP/1.1\r\nHost: app.svc\r\n', 'X-Slow: 1\r\n');
    assert.equal(finished, false);
    assert.match(answer, /^HTTP\/1\.1 408/);
  });

  it('cuts off a client that sends its body too slowly', async () => {
    const { finished } = await trickle('POST / HTTP/1.1\r\nHost: app.svc\r\nContent-Length: 1000\r\n\r\n', 'x');
    assert.equal(finished, false);
  });

  it('keeps serving well-behaved clients', async () => {
    assert.equal((await send(slow, 'app', '/')).status, 200);
  });
});

describe('retries: which failures, which bodies', () => {
  it('a buffered POST refused by one instance is sent, once, to another', async () => {
    const live = await deadAndLive('replay');
    const body = 'p'.repeat(500);
    const replies = await Promise.all([0, 1].map(() => send(harness, 'replay', '/orders', { method: 'POST', body })));
    assert.deepEqual(replies.map((r) => r.status), [200, 200]);
    assert.deepEqual(live.bodies.slice(-2), [body, body]);
  });

  it('a POST body too big to buffer is still retried when the connection was refused (it was not read yet)', async () => {
    const live = await deadAndLive('replay');
    const body = 'q'.repeat(4_000);
    const before = live.requests;
    const streamed = await Promise.all([0, 1].map(() => send(harness, 'replay', '/upload', { method: 'POST', body })));
    const chunked = await Promise.all([0, 1].map(() => send(harness, 'replay', '/upload', { method: 'POST', body, headers: { 'transfer-encoding': 'chunked' } })));
    assert.deepEqual([...streamed, ...chunked].map((r) => r.status), [200, 200, 200, 200]);
    assert.equal(live.requests - before, 4);
    assert.ok(live.bodies.slice(-4).every((b) => b === body));
  });

  it('503: an idempotent GET is retried elsewhere; a POST is answered with the 503, never resent', async () => {
    const bs = await backendsFor('unavailable', 2);
    bs[0].behaviour = 503;
    const gets = await Promise.all([0, 1, 2, 3].map(() => send(harness, 'unavailable', '/')));
    assert.deepEqual(gets.map((r) => r.status), [200, 200, 200, 200]);
    assert.ok(bs[0].requests > 0, 'some GETs met the 503 first');
    const before = total(bs);
    const posts = await Promise.all([0, 1, 2, 3].map(() => send(harness, 'unavailable', '/', { method: 'POST', body: 'x' })));
    assert.equal(total(bs) - before, 4, 'each POST reached exactly one upstream');
    assert.ok(posts.some((r) => r.status === 503));
  });

  it('503: a PUT with a buffered body is replayed; with a streamed body it is not', async () => {
    const bs = await backendsFor('unavailable', 2);
    bs[0].behaviour = 503;
    const buffered = await Promise.all([0, 1, 2, 3].map(() => send(harness, 'unavailable', '/', { method: 'PUT', body: 'x' })));
    assert.deepEqual(buffered.map((r) => r.status), [200, 200, 200, 200]);
    const before = total(bs);
    const chunked = await Promise.all(
      [0, 1, 2, 3].map(() => send(harness, 'unavailable', '/', { method: 'PUT', body: 'x', headers: { 'transfer-encoding': 'chunked' } })),
    );
    assert.equal(total(bs) - before, 4, 'a consumed stream is never sent twice');
    assert.ok(chunked.some((r) => r.status === 503));
  });

  it('a connection reset after the request was sent: GET retried, POST not', async () => {
    const bs = await backendsFor('resets', 2);
    bs[0].behaviour = 'reset';
    const gets = await Promise.all([0, 1, 2, 3].map(() => send(harness, 'resets', '/')));
    assert.deepEqual(gets.map((r) => r.status), [200, 200, 200, 200]);
    const before = total(bs);
    const posts = await Promise.all([0, 1, 2, 3].map(() => send(harness, 'resets', '/', { method: 'POST', body: 'x' })));
    assert.equal(total(bs) - before, 4);
    const failed = posts.filter((r) => r.status === 502);
    assert.ok(failed.length > 0);
    assert.ok(failed.every((r) => errorOf(r) === 'upstream_unreachable'));
  });

  it('per-try timeout: a GET tries attempts + 1 instances then answers 504; a POST tries once', async () => {
    const bs = await backendsFor('hung', 2);
    for (const b of bs) b.behaviour = 'hang';
    const get = await send(harness, 'hung', '/');
    assert.deepEqual([get.status, errorOf(get)], [504, 'upstream_timeout']);
    assert.equal(total(bs), 3, 'default attempts: 2 retries');
    const post = await send(harness, 'hung', '/', { method: 'POST', body: 'x' });
    assert.equal(post.status, 504);
    assert.equal(total(bs), 4);
  });

  it('the overall response deadline ends retries: no try outlives it', async () => {
    const bs = await backendsFor('deadline', 2);
    for (const b of bs) b.behaviour = 'hang';
    const reply = await send(harness, 'deadline', '/');
    assert.deepEqual([reply.status, errorOf(reply)], [504, 'upstream_timeout']);
    // 800 ms overall with 500 ms per try: the second try gets what is left, there is no third.
    assert.equal(total(bs), 2);
  });

  it('a reset on a pooled connection closes the instance\'s other idle connections', async () => {
    // Keeps idle connections longer than the wait below: only the proxy can close them in time.
    const b = await Backend.start('flush-0', { keepAliveTimeoutMs: 60_000 });
    backends.push(b);
    await harness.setService('flush', [instance('flush', b.id, b.port)]);
    const held = [send(harness, 'flush', '/slow/1'), send(harness, 'flush', '/slow/2')];
    await waitFor('two held requests', () => b.held.length === 2);
    b.release();
    await Promise.all(held);
    assert.equal(b.openConnections, 2, 'two idle pooled connections');
    b.behaviour = 'reset';
    const reply = await send(harness, 'flush', '/');
    assert.deepEqual([reply.status, errorOf(reply)], [502, 'upstream_unreachable']);
    await waitFor('the other idle connection to close', () => b.openConnections === 0);
  });

  it('a spent retry budget answers the failure instead of retrying', async () => {
    await deadAndLive('no-budget');
    const exhausted = await metricValue('switchboard_proxy_retry_budget_exhausted_total', { service: 'no-budget' });
    const replies: Reply[] = [];
    for (let i = 0; i < 4; i++) replies.push(await send(harness, 'no-budget', '/'));
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, 200, 502, 502]);
    assert.equal(await metricValue('switchboard_proxy_retry_budget_exhausted_total', { service: 'no-budget' }), exhausted + 2);
  });
});
