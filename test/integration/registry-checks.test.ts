/** Registry-side HTTP and TCP checks against real backends on loopback, through a real Registry. */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import type { CatalogMessage } from '../../src/bus/bus';
import { LocalBus } from '../../src/bus/local-bus';
import type { Check } from '../../src/catalog/model';
import { silentLogger } from '../../src/log';
import { registry as metrics } from '../../src/metrics';
import { Registry } from '../../src/registry/registry';
import { MemoryStore } from '../helpers/memory-store';
import { freePort, waitFor } from '../helpers/child';
import { registrySettings } from '../helpers/registry-fixtures';

/**
 * One backend for every test: `/code/<n>` answers n, `/flap` answers `flapCode`, `/hang`
 * never answers. It remembers what each path was asked, so tests can see a check's requests.
 */
class CheckTarget {
  flapCode = 200;
  readonly seen = new Map<string, { method: string; headers: http.IncomingHttpHeaders }[]>();
  private readonly sockets = new Set<Socket>();
  private readonly server = http.createServer((req, res) => this.handle(req, res));

  async start(): Promise<void> {
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  hits(path: string): number {
    return this.seen.get(path)?.length ?? 0;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = req.url ?? '/';
    this.seen.set(path, [...(this.seen.get(path) ?? []), { method: req.method ?? '', headers: req.headers }]);
    if (path === '/hang') return;
    const code = path === '/flap' ? this.flapCode : Number(/^\/code\/(\d{3})$/.exec(path)?.[1] ?? 404);
    res.writeHead(code, { 'content-type': 'text/plain' });
    res.end(`answered ${code}`);
  }
}

const API = { listen: '127.0.0.1:0', maxWait: 600_000 };

describe('registry-side checks', () => {
  const target = new CheckTarget();
  const messages: CatalogMessage[] = [];
  const registered: string[] = [];
  let store: MemoryStore;
  let registry: Registry;
  let base: string;

  before(async () => {
    await target.start();
    store = new MemoryStore();
    await store.open();
    const bus = new LocalBus();
    bus.subscribe({ onMessage: (m) => messages.push(m), onConnect: () => undefined });
    registry = new Registry({ store, bus, logger: silentLogger(), ...registrySettings(API, { minCheckInterval: 50 }) });
    await registry.start();
    base = `http://${registry.address}`;
  });

  afterEach(async () => {
    for (const id of registered.splice(0)) await fetch(`${base}/v1/agent/service/deregister/${id}`, { method: 'PUT' }).then((r) => r.arrayBuffer());
  });

  after(async () => {
    await registry?.stop();
    await store?.close();
    await target.close();
  });

  async function register(id: string, check: Record<string, unknown>): Promise<void> {
    const body = { ID: id, Name: id, Address: '127.0.0.1', Port: 80, Check: { CheckID: `check-${id}`, Interval: '100ms', ...check } };
    const response = await fetch(`${base}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify(body) });
    assert.equal(response.status, 200, await response.text());
    registered.push(id);
  }

  const checkOf = (id: string): Check | undefined => registry.view.instance(id)?.checks[0];

  async function waitForStatus(id: string, status: string, outputPart = ''): Promise<Check> {
    await waitFor(`${id} to be ${status} (${outputPart})`, () => checkOf(id)?.status === status && (checkOf(id)?.output ?? '').includes(outputPart));
    return checkOf(id) as Check;
  }

  it('HTTP 200 is passing, with Consul-style output', async () => {
    await register('ok', { HTTP: target.url('/code/200') });
    const check = await waitForStatus('ok', 'passing');
    // The status line only: the body is not read unless registry.checkOutputExcerpt asks for it.
    assert.equal(check.output, `HTTP GET ${target.url('/code/200')}: 200 OK`);
    const health = (await (await fetch(`${base}/v1/health/service/ok?passing`)).json()) as unknown[];
    assert.equal(health.length, 1, 'the Consul health API reports it passing');
  });

  it('HTTP 429 is warning', async () => {
    await register('busy', { HTTP: target.url('/code/429') });
    await waitForStatus('busy', 'warning', '429 Too Many Requests');
  });

  it('HTTP 500 is critical', async () => {
    await register('broken', { HTTP: target.url('/code/500'), Status: 'passing' });
    await waitForStatus('broken', 'critical', '500 Internal Server Error');
  });

  it('a backend that never answers is critical after the Timeout', async () => {
    await register('hung', { HTTP: target.url('/hang'), Interval: '300ms', Timeout: '200ms', Status: 'passing' });
    await waitForStatus('hung', 'critical', 'timed out after 200 ms');
  });

  it('sends the Method and Header of the check definition', async () => {
    await register('custom', { HTTP: target.url('/code/204'), Method: 'put', Header: { 'X-Probe': ['yes'] } });
    await waitForStatus('custom', 'passing');
    const request = target.seen.get('/code/204')?.[0];
    assert.equal(request?.method, 'PUT');
    assert.equal(request?.headers['x-probe'], 'yes');
  });

  it('TCP: an open port is passing, a closed one critical', async () => {
    const closed = await freePort();
    await register('tcp-open', { TCP: target.url('').replace('http://', '') });
    await register('tcp-closed', { TCP: `127.0.0.1:${closed}`, Status: 'passing' });
    const open = await waitForStatus('tcp-open', 'passing');
    assert.equal(open.output, `TCP connect ${target.url('').replace('http://', '')}: Success`);
    await waitForStatus('tcp-closed', 'critical', 'ECONNREFUSED');
  });

  it('DeregisterCriticalServiceAfter removes an instance whose HTTP check stays critical', async () => {
    await register('witness', { HTTP: target.url('/code/202') });
    await register('doomed', { HTTP: target.url('/code/503'), Status: 'passing', DeregisterCriticalServiceAfter: '300ms' });
    await waitForStatus('doomed', 'critical');
    await waitFor('the instance to be reaped', () => registry.view.instance('doomed') === undefined);
    const hits = target.hits('/code/503');
    const witnessHits = target.hits('/code/202');
    await waitFor('three more runs of the witness check', () => target.hits('/code/202') >= witnessHits + 3);
    assert.ok(target.hits('/code/503') <= hits + 1, 'the reaped instance is no longer checked');
    assert.ok(checkOf('witness'), 'a passing instance is left alone');
  });

  it('follows a flapping backend through the change feed, writing only on flips', async () => {
    target.flapCode = 200;
    await register('flappy', { HTTP: target.url('/flap') });
    await waitForStatus('flappy', 'passing');
    const steadyIndex = registry.view.serviceIndex('flappy');
    const hits = target.hits('/flap');
    await waitFor('five more passing runs', () => target.hits('/flap') >= hits + 5);
    assert.equal(registry.view.serviceIndex('flappy'), steadyIndex, 'steady passing runs write nothing');

    const from = messages.length;
    target.flapCode = 500;
    await waitForStatus('flappy', 'critical', '500');
    await waitFor('the flip on the bus', () => messages.slice(from).some((m) => m.services.includes('flappy')));
    target.flapCode = 200;
    await waitForStatus('flappy', 'passing', '200');
    target.flapCode = 429;
    await waitForStatus('flappy', 'warning', '429');
  });

  it('exports run counts and durations by type', async () => {
    await register('counted', { HTTP: target.url('/code/200') });
    await waitForStatus('counted', 'passing');
    const text = await metrics.metrics();
    assert.match(text, /switchboard_registry_checks_total\{type="http",status="passing"\} [1-9]/);
    assert.match(text, /switchboard_registry_check_duration_seconds_count\{type="http"\} [1-9]/);
  });
});
