import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { LocalBus } from '../../src/bus/local-bus';
import type { Instance } from '../../src/catalog/model';
import type { ProxyConfig } from '../../src/config/types';
import { isSwitchboardError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { registry } from '../../src/metrics';
import { ProxyServer } from '../../src/proxy/server';
import { freePort } from '../helpers/child';
import { closeNow, listenOnLoopback } from '../helpers/http-server';
import { FakeCatalog, instance, proxyConfig, waitFor } from '../helpers/proxy-harness';

const MiB = 1024 * 1024;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Backend {
  port: number;
  connections: number;
  handle: Handler;
  close(): Promise<void>;
}

/** Echoes what it received, unless a test sets `handle`. */
async function startBackend(name: string): Promise<Backend> {
  const echo: Handler = (req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ backend: name, method: req.method, url: req.url, headers: req.headers }));
    });
  };
  const backend: Backend = { port: 0, connections: 0, handle: echo, close: async () => undefined };
  const server = http.createServer((req, res) => backend.handle(req, res));
  server.on('connection', () => backend.connections++);
  server.on('upgrade', (_req, socket: Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.pipe(socket);
  });
  backend.port = await listenOnLoopback(server);
  backend.close = () => closeNow(server);
  return backend;
}

function forwardConfig(overrides: Partial<ProxyConfig['timeouts']> = {}): ProxyConfig {
  return proxyConfig({
    stripServicePrefix: false,
    routes: [
      { prefix: '/api', service: 'users', strip: true },
      { prefix: '/ghost', service: 'ghost', strip: false },
    ],
    timeouts: { connect: 2000, response: 5000, idle: 10_000, ...overrides },
    drain: 5000,
  });
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function send(proxy: ProxyServer, path: string, options: { host?: string; method?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<Reply> {
  const [host, port] = splitAddress(proxy.address);
  const reply = new Promise<Reply>((resolve, reject) => {
    const req = http.request(
      { host, port, path, method: options.method ?? 'GET', agent: false, headers: { host: options.host ?? 'localhost', ...options.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
  return withDeadline(reply, `the reply to ${path}`);
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}

const json = (reply: Reply) => JSON.parse(reply.body.toString());

describe('proxy forwarding', () => {
  const bus = new LocalBus();
  const catalog = new FakeCatalog(bus);
  let users: Backend;
  let orders: Backend;
  let proxy: ProxyServer;

  async function setService(service: string, instances: Instance[]): Promise<void> {
    await catalog.set(service, instances);
    await waitFor(`catalog rev ${catalog.rev}`, () => proxy.cache.rev === catalog.rev, 5000);
  }

  before(async () => {
    users = await startBackend('users');
    orders = await startBackend('orders');
    proxy = new ProxyServer({ config: forwardConfig(), domain: 'svc', source: catalog, bus, logger: silentLogger() });
    await proxy.start();
    await setService('users', [instance('users', 'u1', users.port)]);
    await setService('orders', [instance('orders', 'o1', orders.port, 'passing', ['urlprefix-/shop strip=/shop'])]);
  });

  after(async () => {
    await proxy?.stop(0);
    await Promise.all([users?.close(), orders?.close()]);
  });

  it('is ready after the first catalog sync and reports its real port', () => {
    assert.equal(proxy.isReady(), true);
    assert.match(proxy.address, /^127\.0\.0\.1:[1-9]\d*$/);
  });

  it('routes by Host <service>.<domain>', async () => {
    const reply = await send(proxy, '/profile?id=7', { host: 'users.svc:8080' });
    assert.equal(reply.status, 200);
    assert.deepEqual([json(reply).backend, json(reply).url], ['users', '/profile?id=7']);
  });

  it('routes by a config prefix rule and strips it', async () => {
    const reply = await send(proxy, '/api/profile?id=7');
    assert.deepEqual([json(reply).backend, json(reply).url], ['users', '/profile?id=7']);
  });

  it('routes by a urlprefix tag and by /<service>/ path', async () => {
    assert.deepEqual([json(await send(proxy, '/shop/cart')).backend, json(await send(proxy, '/shop/cart')).url], ['orders', '/cart']);
    assert.deepEqual([json(await send(proxy, '/orders/1')).backend, json(await send(proxy, '/orders/1')).url], ['orders', '/orders/1']);
  });

  it("replaces a client's X-Forwarded-For, -Proto, -Host and Forwarded (no trusted proxies configured)", async () => {
    const reply = await send(proxy, '/x', {
      host: 'users.svc',
      headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', forwarded: 'for=203.0.113.9' },
    });
    const headers = json(reply).headers;
    assert.equal(headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(headers['x-forwarded-proto'], 'http');
    assert.equal(headers['x-forwarded-host'], 'users.svc');
    assert.equal(headers.forwarded, undefined);
  });

  it('forwards the normalised target it routed on: // merged, the query untouched', async () => {
    const reply = await send(proxy, '/a//b/http:/x/?q=//y/../z', { host: 'users.svc' });
    assert.equal(json(reply).url, '/a/b/http:/x/?q=//y/../z');
  });

  it('sends a chunked DELETE body as it came, and adds no X-Forwarded-Port', async () => {
    users.handle = (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.end(JSON.stringify({ body: Buffer.concat(chunks).toString(), headers: req.headers })));
    };
    try {
      const reply = await send(proxy, '/api/item/1', { method: 'DELETE', body: Buffer.from('why: duplicate'), headers: { 'transfer-encoding': 'chunked' } });
      const seen = json(reply) as { body: string; headers: IncomingHttpHeaders };
      assert.equal(seen.body, 'why: duplicate');
      assert.equal(seen.headers['transfer-encoding'], 'chunked');
      assert.equal(seen.headers['content-length'], undefined);
      assert.equal(seen.headers['x-forwarded-port'], undefined);
    } finally {
      users.handle = echoOf('users');
    }
  });

  it('keeps a client x-request-id and returns it', async () => {
    const reply = await send(proxy, '/x', { host: 'users.svc', headers: { 'x-request-id': 'req-42' } });
    assert.equal(json(reply).headers['x-request-id'], 'req-42');
    assert.equal(reply.headers['x-request-id'], 'req-42');
  });

  it('generates an x-request-id when there is none, upstream and back', async () => {
    const reply = await send(proxy, '/x', { host: 'users.svc' });
    const id = json(reply).headers['x-request-id'];
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(reply.headers['x-request-id'], id);
  });

  it('reuses upstream connections across requests (keep-alive)', async () => {
    const before = users.connections;
    for (let i = 0; i < 30; i++) assert.equal((await send(proxy, '/x', { host: 'users.svc', headers: { connection: 'close' } })).status, 200);
    assert.ok(users.connections - before <= 2, `30 requests opened ${users.connections - before} upstream connections`);
  });

  it('streams a large upload: the upstream sees bytes before the client finished sending', async () => {
    const firstBytes = deferred();
    users.handle = (req, res) => {
      const hash = createHash('sha256');
      let length = 0;
      req.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
        firstBytes.resolve();
      });
      req.on('end', () => res.end(JSON.stringify({ length, sha256: hash.digest('hex') })));
    };
    try {
      const body = Buffer.alloc(MiB + 512 * 1024, 'u');
      const [host, port] = splitAddress(proxy.address);
      const replied = new Promise<Reply>((resolve, reject) => {
        const req = http.request({ host, port, path: '/api/upload', method: 'POST', agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        });
        req.on('error', reject);
        req.write(body.subarray(0, 64 * 1024));
        void firstBytes.promise.then(() => req.end(body.subarray(64 * 1024)));
      });
      const reply = await replied;
      assert.deepEqual(json(reply), { length: body.length, sha256: createHash('sha256').update(body).digest('hex') });
    } finally {
      users.handle = echoOf('users');
    }
  });

  /**
   * A client that leaves mid-upload: the upstream's request is cut where the client stopped
   * (never completed with what arrived), and the proxy keeps serving. `leave` is how the
   * client goes: a reset, or a FIN (half-close) with the body unfinished.
   */
  async function leaveMidUpload(leave: (socket: Socket) => void, framing: string): Promise<void> {
    const arrived = deferred();
    const upstreamCut = deferred<{ length: number; complete: boolean }>();
    users.handle = (req, res) => {
      let length = 0;
      req.on('data', (chunk: Buffer) => {
        length += chunk.length;
        if (length >= 64 * 1024) arrived.resolve();
      });
      req.on('close', () => upstreamCut.resolve({ length, complete: req.complete }));
      req.on('end', () => res.end('complete'));
    };
    const [host, port] = splitAddress(proxy.address);
    const socket = net.connect(port, host);
    socket.on('error', () => undefined);
    try {
      const sent = Buffer.alloc(256 * 1024, 'p');
      socket.write(`POST /api/upload HTTP/1.1\r\nHost: localhost\r\n${framing}\r\n\r\n`);
      socket.write(framing.startsWith('Transfer-Encoding') ? Buffer.concat([Buffer.from(`${sent.length.toString(16)}\r\n`), sent]) : sent);
      await withDeadline(arrived.promise, 'the first 64 KiB to reach the upstream');
      leave(socket);
      const cut = await withDeadline(upstreamCut.promise, 'the upstream request to be cut');
      assert.equal(cut.complete, false, 'the upstream must not see a complete request');
      assert.ok(cut.length <= sent.length, `the upstream got ${cut.length} bytes of the ${sent.length} sent`);
    } finally {
      socket.destroy();
      users.handle = echoOf('users');
    }
    assert.equal((await send(proxy, '/api/after')).status, 200);
  }

  it('a client that resets mid-upload: the upstream request is cut, not completed', () =>
    leaveMidUpload((socket) => socket.resetAndDestroy(), `Content-Length: ${4 * MiB}`));

  it('a client that half-closes mid-upload (chunked): the upstream request is cut, not completed', () =>
    leaveMidUpload((socket) => socket.end(), 'Transfer-Encoding: chunked'));

  it('streams a large download: the client gets bytes before the upstream finished sending', async () => {
    const clientGotBytes = deferred();
    const payload = Buffer.alloc(MiB + 256 * 1024, 'd');
    users.handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(payload.subarray(0, 64 * 1024));
      void clientGotBytes.promise.then(() => res.end(payload.subarray(64 * 1024)));
    };
    try {
      const [host, port] = splitAddress(proxy.address);
      const received = await new Promise<Buffer>((resolve, reject) => {
        const req = http.get({ host, port, path: '/api/download', agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => {
            chunks.push(c);
            clientGotBytes.resolve();
          });
          res.on('end', () => resolve(Buffer.concat(chunks)));
        });
        req.on('error', reject);
      });
      assert.equal(received.length, payload.length);
      assert.ok(received.equals(payload));
    } finally {
      users.handle = echoOf('users');
    }
  });

  it('answers 404 unknown_service as JSON for a request no rule matches', async () => {
    const before = await requestCount('_unknown', '4xx');
    const reply = await send(proxy, '/nothing-here', { host: 'nobody.example.com' });
    assert.equal(reply.status, 404);
    assert.match(String(reply.headers['content-type']), /^application\/json/);
    assert.equal(json(reply).error, 'unknown_service');
    assert.ok(reply.headers['x-request-id']);
    assert.equal(await requestCount('_unknown', '4xx'), before + 1);
  });

  it('answers 404 unknown_service for a routed service with no instances', async () => {
    const reply = await send(proxy, '/ghost/x');
    assert.deepEqual([reply.status, json(reply).error], [404, 'unknown_service']);
  });

  it('answers 503 no_healthy_upstream when the service exists but nothing passes', async () => {
    await setService('sick', [instance('sick', 's1', users.port, 'critical')]);
    const reply = await send(proxy, '/', { host: 'sick.svc' });
    assert.deepEqual([reply.status, json(reply).error], [503, 'no_healthy_upstream']);
  });

  it('takes a critical instance out of rotation on the catalog update', async () => {
    await setService('flappy', [instance('flappy', 'f1', users.port)]);
    assert.equal((await send(proxy, '/', { host: 'flappy.svc' })).status, 200);
    await setService('flappy', [instance('flappy', 'f1', users.port, 'critical')]);
    assert.equal((await send(proxy, '/', { host: 'flappy.svc' })).status, 503);
  });

  it('answers 502 upstream_unreachable when the instance refuses connections', async () => {
    await setService('refused', [instance('refused', 'r1', await freePort())]);
    const before = await upstreamErrorCount('refused', 'upstream_unreachable');
    const reply = await send(proxy, '/', { host: 'refused.svc' });
    assert.deepEqual([reply.status, json(reply).error], [502, 'upstream_unreachable']);
    assert.equal(await upstreamErrorCount('refused', 'upstream_unreachable'), before + 1);
  });

  it('cuts the client response when the upstream resets mid-body, and keeps serving', async () => {
    users.handle = (_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('partial');
      setImmediate(() => res.socket?.destroy());
    };
    try {
      await assert.rejects(send(proxy, '/api/reset'), /aborted|socket hang up|ECONNRESET/);
    } finally {
      users.handle = echoOf('users');
    }
    assert.equal((await send(proxy, '/api/after')).status, 200);
  });

  it('aborts the upstream request when the client leaves early', async () => {
    const upstreamClosed = deferred();
    const arrived = deferred();
    users.handle = (req, res) => {
      res.on('close', () => upstreamClosed.resolve());
      arrived.resolve();
      req.resume();
    };
    try {
      const [host, port] = splitAddress(proxy.address);
      const req = http.get({ host, port, path: '/api/slow', agent: false });
      req.on('error', () => undefined);
      await arrived.promise;
      req.destroy();
      await withDeadline(upstreamClosed.promise, 'the upstream request to be aborted');
    } finally {
      users.handle = echoOf('users');
    }
  });

  it('forwards a WebSocket upgrade and relays bytes both ways', async () => {
    const [host, port] = splitAddress(proxy.address);
    const { res, socket } = await new Promise<{ res: IncomingMessage; socket: Socket }>((resolve, reject) => {
      const req = http.request({
        host,
        port,
        path: '/ws',
        agent: false,
        headers: { host: 'users.svc', connection: 'Upgrade', upgrade: 'websocket' },
      });
      req.on('upgrade', (res, socket) => resolve({ res, socket }));
      req.on('response', (r) => reject(new Error(`no upgrade: ${r.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    try {
      assert.equal(res.statusCode, 101);
      assert.ok(res.headers['x-request-id']);
      const echoed = new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString())));
      socket.write('ping');
      assert.equal(await withDeadline(echoed, 'the echo'), 'ping');
    } finally {
      socket.destroy();
    }
  });

  it('refuses a WebSocket upgrade to an unknown service with a JSON 404', async () => {
    const reply = await upgradeRefused(proxy, 'nobody.svc');
    assert.deepEqual([reply.status, json(reply).error], [404, 'unknown_service']);
  });

  it('answers a WebSocket upgrade to a refusing instance with a JSON 502', async () => {
    await setService('wsdown', [instance('wsdown', 'w1', await freePort())]);
    const reply = await upgradeRefused(proxy, 'wsdown.svc');
    assert.deepEqual([reply.status, json(reply).error], [502, 'upstream_unreachable']);
  });
});

/** An upgrade request that the proxy answers with a plain HTTP response. */
function upgradeRefused(proxy: ProxyServer, hostHeader: string): Promise<Reply> {
  const [host, port] = splitAddress(proxy.address);
  return withDeadline(
    new Promise<Reply>((resolve, reject) => {
      const req = http.request({ host, port, path: '/', agent: false, headers: { host: hostHeader, connection: 'Upgrade', upgrade: 'websocket' } });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('upgrade', () => reject(new Error('upgraded')));
      req.on('error', reject);
      req.end();
    }),
    'the refused upgrade',
  );
}

describe('proxy timeouts, listening and shutdown', () => {
  const bus = new LocalBus();
  const catalog = new FakeCatalog(bus);
  let backend: Backend;
  const proxies: ProxyServer[] = [];

  async function startProxy(timeouts: Partial<ProxyConfig['timeouts']> = {}, listen?: string): Promise<ProxyServer> {
    const proxy = new ProxyServer({ config: { ...forwardConfig(timeouts), ...(listen ? { listen } : {}) }, domain: 'svc', source: catalog, bus, logger: silentLogger() });
    proxies.push(proxy);
    await proxy.start();
    await waitFor('the first sync', () => proxy.cache.rev === catalog.rev, 5000);
    return proxy;
  }

  before(async () => {
    backend = await startBackend('slow');
    await catalog.set('slow', [instance('slow', 'sl1', backend.port)]);
  });

  after(async () => {
    await Promise.all(proxies.map((p) => p.stop(0)));
    await backend?.close();
  });

  it('answers 504 upstream_timeout when the upstream sends no response headers in time', async () => {
    backend.handle = (req) => req.resume();
    const proxy = await startProxy({ response: 150 });
    const reply = await send(proxy, '/', { host: 'slow.svc' });
    assert.deepEqual([reply.status, json(reply).error], [504, 'upstream_timeout']);
  });

  it('rejects a busy port with address_in_use', async () => {
    const first = await startProxy();
    const second = new ProxyServer({ config: { ...forwardConfig(), listen: first.address }, domain: 'svc', source: catalog, bus, logger: silentLogger() });
    await assert.rejects(second.start(), (err) => isSwitchboardError(err, 'address_in_use') && err.message === `cannot listen on ${first.address}: address already in use`);
    await second.stop(0);
  });

  it('lets an in-flight request finish on graceful stop', async () => {
    const arrived = deferred();
    const release = deferred();
    backend.handle = (req, res) => {
      req.resume();
      arrived.resolve();
      void release.promise.then(() => res.end('finished'));
    };
    const proxy = await startProxy();
    const reply = send(proxy, '/', { host: 'slow.svc' });
    await arrived.promise;
    let stopped = false;
    const stopping = proxy.stop(10_000).then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(stopped, false, 'stop waits for the in-flight request');
    release.resolve();
    const { status, body } = await reply;
    assert.deepEqual([status, body.toString()], [200, 'finished']);
    await stopping;
    await assert.rejects(send(proxy, '/', { host: 'slow.svc' }), 'no longer accepting');
  });
});

function echoOf(name: string): Handler {
  return (req, res) => {
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ backend: name, method: req.method, url: req.url, headers: req.headers })));
  };
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function withDeadline<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  const match = values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return match?.value ?? 0;
}

const requestCount = (service: string, codeClass: string) =>
  metricValue('switchboard_proxy_requests_total', { service, code_class: codeClass });
const upstreamErrorCount = (service: string, error: string) =>
  metricValue('switchboard_proxy_upstream_errors_total', { service, error });
