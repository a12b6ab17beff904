/**
 * Notifications in distributed mode (etcd, Redis, two `switchboard registry`): the leader tells
 * each state change once; when it is killed with a change held back (inside the hold-down),
 * the survivor tells it — once — from what the store says was told.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/child';
import { Topology, httpRequest, leaderOf } from '../helpers/distributed';
import type { RoleProcess } from '../helpers/role-process';
import { WebhookReceiver } from '../helpers/webhook-receiver';

const TIMEOUT = { timeout: 60_000 };

describe('distributed mode: notifications across a leader kill', TIMEOUT, () => {
  let t: Topology | undefined;
  let receiver: WebhookReceiver;
  let dir = '';

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-notify-'));
    receiver = await WebhookReceiver.start();
    const config = path.join(dir, 'switchboard.yaml');
    writeFileSync(config, `notify:\n  holdDown: 3s\n  webhooks:\n    - url: ${receiver.url}\n      events: [instance-critical, instance-recovered, service-down, service-up]\n`);
    t = await Topology.start({ registries: 2, proxies: 0, registryArgs: ['--config', config] });
  });

  after(async () => {
    await t?.stop();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const check = (registry: RoleProcess, action: 'pass' | 'fail', note: string) =>
    httpRequest(registry.url('api', `/v1/agent/check/${action}/service:pay-1?note=${note}`), { method: 'PUT' });

  it('one message per change, including the change the killed leader held back', TIMEOUT, async () => {
    const [a, b] = (t as Topology).registries;
    assert.equal(await leaderOf(b), a.address('api'));
    const body = JSON.stringify({ ID: 'pay-1', Name: 'pay', Address: '127.0.0.1', Port: 9999, Check: { TTL: '10m', Status: 'passing' } });
    assert.equal((await httpRequest(b.url('api', '/v1/agent/service/register'), { method: 'PUT', body })).status, 200);

    assert.equal((await check(b, 'fail', 'down')).status, 200);
    await waitFor('the leader to tell the failure', () => receiver.received.length === 2, 15_000);
    assert.deepEqual(receiver.events().sort(), ['instance-critical pay-1', 'service-down pay']);

    // Recovered, and the leader killed well inside its 3 s hold-down: it told nothing.
    assert.equal((await check(b, 'pass', 'ok')).status, 200);
    await a.kill('SIGKILL');
    await waitFor('the survivor to lead', async () => (await leaderOf(b)) === b.address('api'), 20_000);
    await waitFor('the survivor to tell the recovery', () => receiver.received.length === 4, 15_000);

    // One more change: any duplicate of the recovery would be queued before it.
    assert.equal((await check(b, 'fail', 'again')).status, 200);
    await waitFor('the next failure', () => receiver.received.length >= 6, 15_000);
    assert.deepEqual(receiver.events().slice(2, 4).sort(), ['instance-recovered pay-1', 'service-up pay'], 'the survivor told the held-back recovery');
    const counts = new Map<string, number>();
    for (const e of receiver.events()) counts.set(e, (counts.get(e) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(counts), { 'instance-critical pay-1': 2, 'service-down pay': 2, 'instance-recovered pay-1': 1, 'service-up pay': 1 });
  });
});
