/**
 * `switchboard proxy --workers 2` in a real distributed topology (etcd, Redis, a registry):
 * connections are spread over both workers, /metrics on the one admin listener sums them,
 * a worker killed with SIGKILL is replaced while the other keeps serving (and the summed
 * counters do not go backwards), and SIGTERM drains everything and exits 0.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Backend } from '../helpers/backend';
import { waitFor } from '../helpers/child';
import { Topology, httpRequest, register, servedBy, viaProxy, waitReady } from '../helpers/distributed';
import type { RoleProcess } from '../helpers/role-process';
import { runSwitchboard } from '../helpers/switchboard-process';

const TIMEOUT = { timeout: 40_000 };
const [major, minor] = process.versions.node.split('.').map(Number);
const reusePortSupported = major > 22 || (major === 22 && minor >= 12);

const REQUESTS = 'switchboard_proxy_requests_total';

interface WorkerView {
  worker: number;
  pid?: number;
  state: string;
  restarts: number;
  requests?: number;
}

async function workersOf(proxy: RoleProcess): Promise<WorkerView[]> {
  const reply = await httpRequest(proxy.url('admin', '/workers'));
  assert.equal(reply.status, 200, reply.body);
  return (JSON.parse(reply.body) as { workers: WorkerView[] }).workers;
}

/** The sum of every switchboard_proxy_requests_total sample on the proxy's /metrics. */
async function requestsTotal(proxy: RoleProcess): Promise<number> {
  const reply = await httpRequest(proxy.url('admin', '/metrics'));
  assert.equal(reply.status, 200);
  return reply.body
    .split('\n')
    .filter((line) => line.startsWith(`${REQUESTS}{`) || line.startsWith(`${REQUESTS} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** `count` GETs, each on a fresh connection (round robin hands out connections, not requests). */
async function sendRequests(proxy: RoleProcess, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const reply = await viaProxy(proxy, 'app', `/r${i}`);
    assert.equal(reply.status, 200, `request ${i}: ${reply.status} ${reply.body}`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('switchboard proxy --workers 2', TIMEOUT, () => {
  let t: Topology | undefined;
  let backend: Backend | undefined;
  let proxy: RoleProcess | undefined;

  before(async () => {
    t = await Topology.start({ etcdMembers: 1, registries: 1, proxies: 0 });
    backend = await Backend.start('app-1');
    assert.equal((await register(t.registries[0], { id: 'app-1', service: 'app', port: backend.port })).status, 200);
    proxy = await t.startProxy(['--workers=2']);
    await waitReady(proxy);
    const started = proxy;
    await waitFor('the proxy to route app', async () => (await servedBy(started, 'app')) === 'app-1', 15_000);
  });

  after(async () => {
    await t?.stop();
    await backend?.close();
  });

  test('spreads connections over both workers and sums their counters on one /metrics', TIMEOUT, async () => {
    const p = proxy as RoleProcess;
    const workers = await workersOf(p);
    assert.equal(workers.length, 2);
    assert.ok(workers.every((w) => w.state === 'ready' && w.pid !== undefined && w.pid !== p.pid), JSON.stringify(workers));
    assert.notEqual(workers[0].pid, workers[1].pid);

    const before = await requestsTotal(p);
    await sendRequests(p, 40);
    const total = await requestsTotal(p);
    assert.equal(total - before, 40, 'every request counted once');

    const counted = await workersOf(p);
    assert.ok(counted.every((w) => (w.requests ?? 0) > 0), `both workers answered requests: ${JSON.stringify(counted)}`);
    assert.equal(counted.reduce((sum, w) => sum + (w.requests ?? 0), 0), total, '/metrics is the sum over the workers');
  });

  test('a worker killed with SIGKILL is replaced; the proxy keeps serving and /metrics never goes backwards', TIMEOUT, async () => {
    const p = proxy as RoleProcess;
    const [victim] = await workersOf(p);
    const victimPid = victim.pid as number;
    // The scrape right before the kill holds the victim's final count.
    const before = await requestsTotal(p);
    process.kill(victimPid, 'SIGKILL');

    await waitFor('the primary to notice the dead worker', async () => (await workersOf(p)).every((w) => w.pid !== victimPid), 10_000);
    await sendRequests(p, 10); // served by the survivor while the replacement starts
    await waitFor(
      'a replacement worker to be ready',
      async () => {
        const slot = (await workersOf(p)).find((w) => w.worker === victim.worker);
        return slot?.state === 'ready' && slot.restarts >= 1 && slot.pid !== undefined && alive(slot.pid);
      },
      15_000,
    );
    await sendRequests(p, 20);

    assert.equal(await requestsTotal(p), before + 30, 'the dead worker\'s requests are still counted');
    const replacement = (await workersOf(p)).find((w) => w.worker === victim.worker) as WorkerView;
    assert.ok((replacement.requests ?? 0) > 0, `the replacement takes connections: ${JSON.stringify(replacement)}`);
    assert.equal((await httpRequest(p.url('admin', '/readyz'))).status, 200);
  });

  test('--worker-sockets=reuseport: each worker binds the port, both serve, one port for all', { ...TIMEOUT, skip: !reusePortSupported && 'Node < 22.12 (the next test covers the refusal)' }, async () => {
    const own = await (t as Topology).startProxy(['--workers=2', '--worker-sockets=reuseport']);
    try {
      await waitReady(own);
      await waitFor('the reuseport proxy to route app', async () => (await servedBy(own, 'app')) === 'app-1', 15_000);
      const before = await requestsTotal(own);
      await sendRequests(own, 40);
      assert.equal((await requestsTotal(own)) - before, 40);
      const counted = await workersOf(own);
      assert.ok(counted.every((w) => (w.requests ?? 0) > 0), `the kernel spread connections over both workers: ${JSON.stringify(counted)}`);
    } finally {
      await own.stop();
    }
  });

  test('a reload reaches every worker: a new route works on every connection', TIMEOUT, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-workers-reload-'));
    const file = path.join(dir, 'switchboard.yaml');
    writeFileSync(file, 'proxy: {}\n');
    const own = await (t as Topology).startProxy(['--workers=2', '--config', file]);
    try {
      await waitReady(own);
      await waitFor('the proxy to route app', async () => (await servedBy(own, 'app')) === 'app-1', 15_000);
      assert.equal((await httpRequest(own.url('proxy', '/shop/x'))).status, 404);
      writeFileSync(file, 'proxy:\n  routes:\n    - { prefix: /shop, service: app }\n');
      const reply = await httpRequest(own.url('admin', '/reload'), { method: 'POST' });
      assert.equal(reply.status, 200, reply.body);
      assert.deepEqual((JSON.parse(reply.body) as { applied: string[] }).applied, ['proxy.routes']);
      // Fresh connections land on both workers: every one of them must know the route.
      for (let i = 0; i < 20; i++) assert.equal((await httpRequest(own.url('proxy', `/shop/${i}`))).status, 200);
      const counted = await workersOf(own);
      assert.ok(counted.every((w) => (w.requests ?? 0) > 0), JSON.stringify(counted));
    } finally {
      await own.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('SIGTERM drains the workers and exits 0', TIMEOUT, async () => {
    const p = proxy as RoleProcess;
    const pids = (await workersOf(p)).map((w) => w.pid as number);
    const exit = await p.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, p.output());
    assert.deepEqual(pids.filter(alive), [], 'no worker outlives the primary');
  });
});

describe('--workers on the command line', TIMEOUT, () => {
  test('the all role does not take --workers (exit 2, one line)', async () => {
    const res = await runSwitchboard(['all', '--workers=2']);
    assert.equal(res.code, 2);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.match(res.stderr, /flag --workers: .*unknown flag \(see switchboard all --help\)/);
  });

  test('--workers 0 is refused (exit 2, naming proxy.workers)', async () => {
    const res = await runSwitchboard(['proxy', '--workers=0', '--registry=http://127.0.0.1:1']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /flag --workers: proxy\.workers/);
  });

  test('workers that cannot bind the proxy port fail the start with one line (exit 1)', TIMEOUT, async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      const res = await runSwitchboard(
        ['proxy', '--workers=2', '--registry=http://127.0.0.1:1', '--redis=redis://127.0.0.1:1', `--proxy-listen=127.0.0.1:${port}`, '--admin-listen=127.0.0.1:0'],
        { timeoutMs: 20_000 },
      );
      assert.equal(res.code, 1, res.stdout + res.stderr);
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
      assert.match(res.stderr, /cannot listen on 127\.0\.0\.1:\d+ \(--proxy-listen\): address already in use/);
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
  });

  test('--worker-sockets=reuseport on a Node without it: exit 2, one line saying which Node', { skip: reusePortSupported && 'this Node has SO_REUSEPORT listeners' }, async () => {
    const res = await runSwitchboard(['proxy', '--workers=2', '--worker-sockets=reuseport', '--registry=http://127.0.0.1:1', '--redis=redis://127.0.0.1:1', '--proxy-listen=127.0.0.1:0', '--admin-listen=127.0.0.1:0'], { timeoutMs: 20_000 });
    assert.equal(res.code, 2, res.stdout + res.stderr);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.match(res.stderr, /reuseport" needs Node 22\.12 or newer/);
  });
});
