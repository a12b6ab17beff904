/**
 * The Consul API in distributed mode (two `switchboard registry` processes over etcd): the KV
 * store lives in etcd — a write through one registry is read through the other, and wakes a
 * blocking query parked there — and both registry processes are members and peers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/child';
import { Topology, httpRequest } from '../helpers/distributed';

const TIMEOUT = { timeout: 90_000 };

describe('distributed mode: the Consul API over etcd', TIMEOUT, () => {
  let t: Topology | undefined;

  before(async () => {
    t = await Topology.start({ registries: 2, proxies: 0 });
  });

  after(async () => {
    await t?.stop();
  });

  it('a KV write through one registry is read, and wakes a blocking query, on the other', TIMEOUT, async () => {
    const [a, b] = (t as Topology).registries;
    const put = await httpRequest(a.url('api', '/v1/kv/app/feature'), { method: 'PUT', body: 'on' });
    assert.equal(put.body, 'true');
    // B answers from its own view of etcd, which follows within milliseconds.
    let read = await httpRequest(b.url('api', '/v1/kv/app/feature?raw'));
    await waitFor('B to see the write through A', async () => (read = await httpRequest(b.url('api', '/v1/kv/app/feature?raw'))).status === 200);
    assert.equal(read.body, 'on');
    const index = Number(read.headers['x-consul-index']);
    const blocked = httpRequest(b.url('api', `/v1/kv/app/?recurse&index=${index}&wait=20s`), { timeoutMs: 30_000 });
    // Whether it lands before or after the query parks on B, the write moves the index past it.
    assert.equal((await httpRequest(a.url('api', '/v1/kv/app/other'), { method: 'PUT', body: 'x' })).body, 'true');
    const woken = await blocked;
    assert.equal(woken.status, 200);
    assert.ok(Number(woken.headers['x-consul-index']) > index);
    const keys = (JSON.parse(woken.body) as Array<{ Key: string }>).map((e) => e.Key);
    assert.deepEqual(keys, ['app/feature', 'app/other']);
  });

  it('both registry processes are members and peers, the leader first', TIMEOUT, async () => {
    const [a, b] = (t as Topology).registries;
    const leader = JSON.parse((await httpRequest(a.url('api', '/v1/status/leader'))).body) as string;
    const peers = JSON.parse((await httpRequest(b.url('api', '/v1/status/peers'))).body) as string[];
    assert.deepEqual([...peers].sort(), [a.addresses.api, b.addresses.api].sort());
    assert.equal(peers[0], leader);
    const members = JSON.parse((await httpRequest(a.url('api', '/v1/agent/members'))).body) as Array<{ Name: string; Status: number }>;
    assert.deepEqual(members.map((m) => m.Name).sort(), [a.addresses.api, b.addresses.api].sort());
  });
});
