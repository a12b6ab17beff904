/** The Registry role as the CLI runs it: a real listener, the bus, and catalog sources over it. */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import type { CatalogMessage } from '../../src/bus/bus';
import { LocalBus } from '../../src/bus/local-bus';
import { HttpSource } from '../../src/catalog/http-source';
import { SwitchboardError, isSwitchboardError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { registry as metrics } from '../../src/metrics';
import { Registry } from '../../src/registry/registry';
import { MemoryStore } from '../helpers/memory-store';
import { freePort, waitFor } from '../helpers/child';
import { closeNow, listenOnLoopback } from '../helpers/http-server';
import { registrySettings } from '../helpers/registry-fixtures';

const API = { listen: '127.0.0.1:0', maxWait: 600_000 };

async function putJson(base: string, path: string, body?: unknown): Promise<number> {
  const response = await fetch(`${base}${path}`, { method: 'PUT', body: body === undefined ? undefined : JSON.stringify(body) });
  await response.arrayBuffer();
  return response.status;
}

describe('Registry', () => {
  let store: MemoryStore;
  let bus: LocalBus;
  let registry: Registry | undefined;
  const messages: CatalogMessage[] = [];

  before(async () => {
    store = new MemoryStore();
    await store.open();
    bus = new LocalBus();
    bus.subscribe({ onMessage: (m) => messages.push(m), onConnect: () => undefined });
    registry = new Registry({ store, bus, logger: silentLogger(), ...registrySettings(API) });
    await registry.start();
  });

  after(async () => {
    await registry?.stop();
    await store.close();
  });

  it('listens on the port it was given (0 = any) and reports host:port', () => {
    assert.match(registry?.address ?? '', /^127\.0\.0\.1:\d+$/);
    assert.notEqual(registry?.address, '127.0.0.1:0');
  });

  it('publishes each catalog change on the bus, in order, chained by prevRev', async () => {
    const base = `http://${registry?.address}`;
    const from = messages.length;
    assert.equal(await putJson(base, '/v1/agent/service/register', { Name: 'web', Port: 80 }), 200);
    assert.equal(await putJson(base, '/v1/agent/service/register', { Name: 'db', Port: 5432 }), 200);
    assert.equal(await putJson(base, '/v1/agent/service/deregister/web'), 200);
    await waitFor('three messages', () => messages.length >= from + 3);
    const mine = messages.slice(from);
    assert.deepEqual(mine.map((m) => m.services), [['web'], ['db'], ['web']]);
    for (let i = 1; i < messages.length; i++) assert.equal(messages[i].prevRev, messages[i - 1].rev);
    assert.ok(mine.every((m, i) => i === 0 || m.rev > mine[i - 1].rev));
  });

  it('serves proxies through an HttpSource and a LocalSource alike', async () => {
    const http = new HttpSource(`http://${registry?.address}/`);
    const local = registry!.source();
    try {
      const full = await http.changes(0);
      assert.equal(full.full, true);
      assert.deepEqual(full, await local.changes(0));
      assert.equal(await putJson(`http://${registry?.address}`, '/v1/agent/service/register', { Name: 'cache', Port: 6379 }), 200);
      const delta = await http.changes(full.rev, full.rev + 1);
      assert.equal(delta.full, false);
      assert.deepEqual(Object.keys(delta.services), ['cache']);
    } finally {
      await http.close();
      await local.close();
    }
  });

  it('exports its metrics: requests by route and status class, published messages, catalog revision', async () => {
    const text = await metrics.metrics();
    const line = (name: string, ...parts: string[]) =>
      text.split('\n').find((l) => l.startsWith(name) && parts.every((p) => l.includes(p)));
    assert.ok(line('switchboard_registry_http_requests_total', 'route="/v1/agent/service/register"', 'code_class="2xx"'), text);
    assert.match(line('switchboard_registry_published_total') ?? '', / [1-9]\d*$/);
    assert.match(line('switchboard_registry_catalog_revision') ?? '', / [1-9]\d*$/);
  });

  it('refuses to start on a busy port with address_in_use', async () => {
    const busy = registry?.address ?? '';
    const second = new Registry({ store, bus, logger: silentLogger(), ...registrySettings({ ...API, listen: busy }) });
    await assert.rejects(second.start(), (err: unknown) => {
      assert.ok(isSwitchboardError(err, 'address_in_use'));
      assert.equal((err as SwitchboardError).message, `cannot listen on ${busy}: address already in use`);
      return true;
    });
    // The failed start cleaned up after itself and left the shared store alone.
    assert.ok((await store.range('')).rev > 0);
  });
});

describe('HttpSource failures', () => {
  let port: number;
  let silentServer: net.Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (silentServer ? silentServer.close(() => resolve()) : resolve()));
    silentServer = undefined;
  });
  before(async () => {
    port = await freePort();
  });

  it('turns a refused connection into store_unavailable', async () => {
    const source = new HttpSource(`http://127.0.0.1:${port}`);
    await assert.rejects(source.changes(0), (err: unknown) => isSwitchboardError(err, 'store_unavailable'));
    await source.close();
  });

  it('gives up on a registry that never answers', async () => {
    const sockets: net.Socket[] = [];
    silentServer = net.createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silentServer?.listen(0, '127.0.0.1', resolve));
    const { port: silentPort } = silentServer.address() as net.AddressInfo;
    const source = new HttpSource(`http://127.0.0.1:${silentPort}`, { timeoutMs: 100 });
    try {
      await assert.rejects(source.changes(0), (err: unknown) => isSwitchboardError(err, 'store_unavailable'));
    } finally {
      for (const s of sockets) s.destroy();
      await source.close();
    }
  });

  it('stop() leaves the store open for the next user', async () => {
    const store = new MemoryStore();
    await store.open();
    const registry = new Registry({ store, bus: new LocalBus(), logger: silentLogger(), ...registrySettings(API) });
    await registry.start();
    await registry.stop();
    assert.equal((await store.txn([], [{ kind: 'put', key: 'x', value: '1' }])).ok, true);
    await store.close();
  });
});

/**
 * A registry's answer is input like any other: a proxy routes on nothing in it that is not an
 * instance record field for field, listed under its own service.
 */
describe('HttpSource: what a registry answers is checked', () => {
  let body = '';
  let server: http.Server;
  let source: HttpSource;
  before(async () => {
    server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
    source = new HttpSource(`http://127.0.0.1:${await listenOnLoopback(server)}`);
  });
  after(async () => {
    await source.close();
    await closeNow(server);
  });

  const record = (fields: Record<string, unknown> = {}): Record<string, unknown> => ({
    id: 'web-1',
    service: 'web',
    address: '127.0.0.1',
    port: 8080,
    tags: [],
    meta: {},
    weights: { passing: 1, warning: 1 },
    checks: [{ checkId: 'service:web-1', name: 'ttl', type: 'ttl', status: 'passing', output: '', statusSince: 1 }],
    createIndex: 3,
    modifyIndex: 4,
    ...fields,
  });
  const answer = (services: unknown, rest: Record<string, unknown> = {}): string => JSON.stringify({ rev: 9, full: true, services, ...rest });

  it('takes a well-formed answer, its records frozen and their empty parts shared', async () => {
    body = answer({ web: [record(), record({ id: 'web-2' })] });
    const delta = await source.changes(0);
    assert.equal(delta.rev, 9);
    const [a, b] = delta.services.web;
    assert.equal(a.port, 8080);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.checks[0]));
    assert.equal(a.tags, b.tags);
    assert.equal(a.meta, b.meta);
  });

  const refused: Array<[string, string]> = [
    ['a record without an address', answer({ web: [record({ address: undefined })] })],
    ['a port out of range', answer({ web: [record({ port: 70000 })] })],
    ['a port that is not a number', answer({ web: [record({ port: '8080' })] })],
    ['a check with an unknown status', answer({ web: [record({ checks: [{ checkId: 'c', status: 'great' }] })] })],
    ['tags that are not strings', answer({ web: [record({ tags: [{}] })] })],
    ['a record listed under another service', answer({ payments: [record()] })],
    ['a service list that is not a list', answer({ web: record() })],
    ['a service named __proto__', `{"rev":9,"full":true,"services":{"__proto__":[${JSON.stringify(record({ service: '__proto__' }))}]}}`],
    ['a revision that is not a number', answer({ web: [record()] }, { rev: '9' })],
    ['no services at all', JSON.stringify({ rev: 9, full: true })],
    ['JSON that is not an object', '[1,2,3]'],
    ['not JSON', '{"rev": 9, "full": tr'],
  ];
  for (const [what, text] of refused) {
    it(`refuses the whole answer for ${what}`, async () => {
      body = text;
      await assert.rejects(source.changes(0), (err: unknown) => isSwitchboardError(err, 'store_unavailable'));
    });
  }
});
