/**
 * Clients nobody here wrote, against `switchboard all`: the npm `consul` client for KV
 * (set/get/keys/del/cas and a watch on a key), check register/update/deregister and
 * maintenance mode — which must take the instance out of the proxy's rotation — and the KV
 * store surviving a restart; then a Python script using only the standard library (urllib),
 * making the calls python-consul makes, when python3 is installed.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import Consul from 'consul';
import { Backend, type BackendReply } from '../helpers/backend';
import { makeTempDir } from '../helpers/child';
import { REPO_ROOT, SwitchboardProcess, jsonOf, request, waitFor } from '../helpers/switchboard-process';

const run = promisify(execFile);
const TIMEOUT = { timeout: 90_000 };

describe('npm consul client and python urllib against switchboard all', TIMEOUT, () => {
  const dataDir = makeTempDir('consul-clients');
  let sb: SwitchboardProcess;
  let consul: Consul;
  let backends: Backend[];

  const connect = (): void => {
    const [host, port] = (sb.addresses.api as string).split(':');
    consul = new Consul({ host, port: Number(port) });
  };

  before(async () => {
    sb = await SwitchboardProcess.start({ dataDir });
    connect();
    backends = await Backend.startMany('web', 2);
  });

  after(async () => {
    consul?.destroy();
    await sb?.cleanup();
    for (const b of backends ?? []) await b.close();
  });

  it('KV: set, get, keys with a separator, cas, delete', TIMEOUT, async () => {
    assert.equal(await consul.kv.set({ key: 'config/web/color', value: 'blue' }), true);
    assert.equal(await consul.kv.set({ key: 'config/web/size', value: 'large', flags: 7 } as never), true);
    assert.equal(await consul.kv.set({ key: 'config/db/host', value: 'db.internal' }), true);
    const color = (await consul.kv.get('config/web/color')) as { Value: string; ModifyIndex: number };
    assert.equal(color.Value, 'blue');
    assert.equal(((await consul.kv.get('config/web/size')) as { Flags: number }).Flags, 7);
    assert.deepEqual(await consul.kv.keys({ key: 'config/', separator: '/' }), ['config/db/', 'config/web/']);
    // A cas that does not hold answers `false`, which this client returns as a falsy value.
    assert.notEqual(await consul.kv.set({ key: 'config/web/color', value: 'red', cas: String(color.ModifyIndex + 1000) } as never), true);
    assert.equal(((await consul.kv.get('config/web/color')) as { Value: string }).Value, 'blue');
    assert.equal(await consul.kv.set({ key: 'config/web/color', value: 'red', cas: String(color.ModifyIndex) } as never), true);
    assert.equal(((await consul.kv.get('config/web/color')) as { Value: string }).Value, 'red');
    await consul.kv.del('config/db/host');
    assert.equal(await consul.kv.get('config/db/host'), undefined);
    const tree = (await consul.kv.get({ key: 'config/', recurse: true })) as Array<{ Key: string }>;
    assert.deepEqual(tree.map((e) => e.Key), ['config/web/color', 'config/web/size']);
  });

  it('KV: a watch on a key sees every change', TIMEOUT, async () => {
    const seen: string[] = [];
    const watch = consul.watch({ method: consul.kv.get, options: { key: 'flag/rollout', wait: '30s' } as never });
    watch.on('change', (data: { Value?: string } | undefined) => seen.push(data?.Value ?? '<none>'));
    watch.on('error', () => undefined);
    try {
      await waitFor('the watch to see the key absent', () => seen.length >= 1, 10_000);
      await consul.kv.set({ key: 'flag/rollout', value: '10%' });
      await waitFor('the watch to see 10%', () => seen.includes('10%'), 10_000);
      await consul.kv.set({ key: 'flag/rollout', value: '50%' });
      await waitFor('the watch to see 50%', () => seen.includes('50%'), 10_000);
      assert.deepEqual(seen, ['<none>', '10%', '50%']);
    } finally {
      watch.end();
    }
  });

  it('checks: register, update, deregister', TIMEOUT, async () => {
    await consul.agent.service.register({ name: 'web', id: 'web-0', address: '127.0.0.1', port: backends[0].port });
    await consul.agent.check.register({ name: 'web-0 ttl', id: 'web-0-ttl', serviceid: 'web-0', ttl: '60s' } as never);
    const update = await request(sb.url('api', '/v1/agent/check/update/web-0-ttl'), { method: 'PUT', body: JSON.stringify({ Status: 'warning', Output: 'slow disk' }) });
    assert.equal(update.status, 200);
    const checks = (await consul.agent.check.list()) as Record<string, { Status: string; Output: string }>;
    assert.equal(checks['web-0-ttl'].Status, 'warning');
    assert.equal(checks['web-0-ttl'].Output, 'slow disk');
    await consul.agent.check.pass('web-0-ttl');
    await consul.agent.check.deregister('web-0-ttl');
    assert.equal('web-0-ttl' in ((await consul.agent.check.list()) as object), false);
  });

  it('maintenance mode takes an instance out of the proxy\'s rotation, and back', TIMEOUT, async () => {
    await consul.agent.service.register({ name: 'web', id: 'web-1', address: '127.0.0.1', port: backends[1].port });
    const served = async (): Promise<Set<string>> => {
      const ids = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const reply = await request(sb.url('proxy', `/m${i}`), { headers: { host: 'web.svc' } });
        if (reply.status === 200) ids.add((jsonOf(reply) as BackendReply).backend);
      }
      return ids;
    };
    await waitFor('both instances in rotation', async () => (await served()).size === 2, 10_000);
    await consul.agent.service.maintenance({ id: 'web-1', enable: true, reason: 'kernel upgrade' });
    await waitFor('web-1 out of rotation', async () => {
      const ids = await served();
      return ids.size === 1 && ids.has('web-0');
    }, 10_000);
    const entries = (await consul.health.service({ service: 'web' })) as Array<{ Service: { ID: string }; Checks: Array<{ CheckID: string; Notes: string }> }>;
    const maintenance = entries.find((e) => e.Service.ID === 'web-1')?.Checks.find((c) => c.CheckID === '_service_maintenance:web-1');
    assert.equal(maintenance?.Notes, 'kernel upgrade');
    await consul.agent.service.maintenance({ id: 'web-1', enable: false });
    await waitFor('web-1 back in rotation', async () => (await served()).size === 2, 10_000);
  });

  it('the KV store survives a restart (the embedded journal)', TIMEOUT, async () => {
    consul.destroy();
    await sb.stop();
    sb = await SwitchboardProcess.start({ dataDir });
    connect();
    assert.equal(((await consul.kv.get('config/web/color')) as { Value: string }).Value, 'red');
    assert.equal(((await consul.kv.get('flag/rollout')) as { Value: string }).Value, '50%');
  });

  it('a python3 urllib client making python-consul\'s calls (blocking ?index&wait, ?token, KV base64) parses every answer', TIMEOUT, async (t) => {
    try {
      await run('python3', ['--version']);
    } catch {
      t.skip('python3 is not installed');
      return;
    }
    const script = path.join(REPO_ROOT, 'test', 'fixtures', 'consul_urllib.py');
    const { stdout } = await run('python3', [script, `http://${sb.addresses.api}`], { timeout: 60_000 });
    const result = JSON.parse(stdout) as Record<string, unknown>;
    assert.deepEqual(result, {
      registered: true,
      index_header: true,
      blocking_woke: true,
      health_ids: ['py-1'],
      kv_value: 'from python ✓',
      kv_missing_status: 404,
      kv_keys: ['py/a', 'py/b'],
      token_accepted: true,
      unknown_dc_status: 500,
    });
  });
});
