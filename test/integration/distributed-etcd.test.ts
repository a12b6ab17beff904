/**
 * Distributed mode over a 3-member etcd cluster, under etcd faults:
 * - the etcd Raft leader is killed while registrations stream in: writes resume and every
 *   registration a registry acknowledged is still in the catalog;
 * - two of three members are down (no quorum): writes answer 503 store_unavailable, DNS
 *   answers from the last view (counted as stale), reads
 *   keep answering from memory flagged X-Consul-KnownLeader: false, /readyz says not ready,
 *   proxies keep routing; when the members return, all of it recovers without a restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dig } from '../helpers/dig';
import { Backend } from '../helpers/backend';
import { waitFor } from '../helpers/child';
import { Topology, httpRequest, idsOf, register, registryCatalog, servedBy, waitConverged } from '../helpers/distributed';

const TIMEOUT = { timeout: 90_000 };

describe('distributed mode: etcd faults', TIMEOUT, () => {
  let t: Topology | undefined;
  let web: Backend | undefined;

  before(async () => {
    t = await Topology.start({ etcdMembers: 3, registries: 2, proxies: 1 });
    web = await Backend.start('web-0');
  });

  after(async () => {
    await t?.stop();
    await web?.close();
  });

  it('killing the etcd leader member: writes resume and nothing acknowledged is lost', TIMEOUT, async (ctx) => {
    const topology = t as Topology;
    const acked: string[] = [];
    let failed = 0;
    let writing = true;
    let n = 0;
    // One registration after another, alternating registries, for as long as the test runs.
    const writer = (async () => {
      while (writing) {
        const id = `w-${n++}`;
        const registry = topology.registries[n % 2];
        try {
          const reply = await register(registry, { id, service: 'writes', port: 1000 + (n % 1000) });
          if (reply.status === 200) acked.push(id);
          else failed++;
        } catch {
          failed++;
        }
      }
    })();
    try {
      await waitFor('20 acknowledged writes', () => acked.length >= 20, 20_000);
      const leader = await topology.etcd.leaderIndex();
      await topology.etcd.members[leader].kill('SIGKILL');
      const ackedAtKill = acked.length;
      await waitFor('20 more acknowledged writes after the kill', () => acked.length >= ackedAtKill + 20, 30_000);
      ctx.diagnostic(`acknowledged ${acked.length}, refused ${failed} (around the etcd leader change)`);
    } finally {
      writing = false;
      await writer;
    }
    for (const registry of topology.registries) {
      const ids = new Set(idsOf(await registryCatalog(registry)).writes);
      const lost = acked.filter((id) => !ids.has(id));
      assert.deepEqual(lost, [], `acknowledged registrations missing from ${registry.address('api')}`);
    }
    await waitConverged(topology.registries[0], topology.proxies);
    // Back to three members for the next test.
    await Promise.all(topology.etcd.members.filter((m) => !m.running()).map((m) => m.restart()));
    await topology.etcd.waitHealthy();
  });

  it('without quorum: writes 503 store_unavailable, reads flagged stale, proxies keep routing; then recovery without restart', TIMEOUT, async () => {
    const topology = t as Topology;
    const [registry] = topology.registries;
    const [proxy] = topology.proxies;
    assert.equal((await register(registry, { id: 'web-0', service: 'web', port: (web as Backend).port })).status, 200);
    await waitFor('the proxy to route web', async () => (await servedBy(proxy, 'web')) === 'web-0', 15_000);

    // One member left running: it answers, but cannot commit anything without a quorum.
    const down = topology.etcd.members.slice(0, 2);
    assert.ok(topology.etcd.members.every((m) => m.running()));
    await Promise.all(down.map((m) => m.kill('SIGKILL')));

    const refused = await register(registry, { id: 'web-1', service: 'web', port: 1 });
    assert.equal(refused.status, 503, refused.body);
    assert.equal((JSON.parse(refused.body) as { error: string }).error, 'store_unavailable');
    await waitFor('reads to say the registry has no known leader', async () => {
      const read = await httpRequest(registry.url('api', '/v1/health/service/web'));
      return read.status === 200 && read.headers['x-consul-knownleader'] === 'false' && read.body.includes('web-0');
    }, 15_000);
    assert.equal((await httpRequest(registry.url('admin', '/readyz'))).status, 503);
    assert.equal(await servedBy(proxy, 'web'), 'web-0', 'the proxy routes on its last catalog');
    // DNS answers from the registry's last view (stale, bounded by dns.maxStale), and says so.
    const answer = await dig(registry.address('dns'), ['web.service.consul', 'A']);
    assert.equal(answer.status, 'NOERROR', answer.text);
    assert.deepEqual(answer.answer.map((a) => a.data), ['127.0.0.1']);
    assert.match((await httpRequest(registry.url('admin', '/metrics'))).body, /^switchboard_dns_stale_answers_total [1-9]/m);

    await Promise.all(down.map((m) => m.restart()));
    await waitFor('writes to work again', async () => (await register(registry, { id: 'web-1', service: 'web', port: 1 })).status === 200, 30_000);
    await waitFor('the registry to be ready again', async () => (await httpRequest(registry.url('admin', '/readyz'))).status === 200, 15_000);
    const read = await httpRequest(registry.url('api', '/v1/health/service/web'));
    assert.equal(read.headers['x-consul-knownleader'], 'true');
    const expected = await waitConverged(registry, topology.proxies);
    assert.deepEqual(idsOf(expected).web, ['web-0', 'web-1']);
  });
});
