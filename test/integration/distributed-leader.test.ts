/**
 * Distributed mode, the leader registry dies (kill -9): the other registry takes over within
 * a few seconds (the election lease TTL), publishes what the dead leader never announced,
 * and later registrations reach every proxy. Then every registry dies: proxies keep routing,
 * and catch up once one is back. Real processes: etcd, redis-server, two
 * `switchboard registry`, two `switchboard proxy`.
 *
 * The proxies' anti-entropy is off (1 h), so what they learn after the kill they can only
 * have learnt from the new leader's messages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Backend } from '../helpers/backend';
import { waitFor } from '../helpers/child';
import { Topology, idsOf, leaderOf, proxyCatalog, register, servedBy, waitConverged } from '../helpers/distributed';

const TIMEOUT = { timeout: 60_000 };

describe('distributed mode: kill -9 of the leader registry', TIMEOUT, () => {
  let t: Topology | undefined;
  const backends: Backend[] = [];

  before(async () => {
    t = await Topology.start({ registries: 2, proxies: 2, proxyArgs: ['--resync-interval=1h'] });
  });

  after(async () => {
    await t?.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  async function backend(id: string): Promise<Backend> {
    const b = await Backend.start(id);
    backends.push(b);
    return b;
  }

  async function everyProxyRoutesTo(service: string, id: string): Promise<void> {
    const proxies = t?.proxies ?? [];
    await waitFor(`every proxy to route ${service} to ${id}`, async () => {
      const answers = await Promise.all(proxies.map((p) => servedBy(p, service)));
      return answers.every((a) => a === id);
    }, 15_000);
  }

  it('the survivor takes over, announces what nobody announced, and new registrations reach every proxy', TIMEOUT, async (ctx) => {
    const topology = t as Topology;
    const [a, b] = topology.registries;
    assert.equal(await leaderOf(b), a.address('api'), 'the first registry leads');

    const before1 = await backend('before-1');
    assert.equal((await register(b, { id: 'before-1', service: 'before', port: before1.port })).status, 200);
    await everyProxyRoutesTo('before', 'before-1');

    const killedAt = Date.now();
    await a.kill('SIGKILL');
    // Committed while no registry leads: the dead leader cannot announce it, the next one must.
    const gap1 = await backend('gap-1');
    assert.equal((await register(b, { id: 'gap-1', service: 'gap', port: gap1.port })).status, 200);

    await waitFor('the survivor to name itself leader', async () => (await leaderOf(b)) === b.address('api'), 15_000);
    ctx.diagnostic(`time to new leader after kill -9: ${Date.now() - killedAt} ms`);
    await everyProxyRoutesTo('gap', 'gap-1');

    const after1 = await backend('after-1');
    assert.equal((await register(b, { id: 'after-1', service: 'after', port: after1.port })).status, 200);
    await everyProxyRoutesTo('after', 'after-1');

    const expected = await waitConverged(b, topology.proxies);
    assert.deepEqual(idsOf(expected), { after: ['after-1'], before: ['before-1'], gap: ['gap-1'] });
    for (const proxy of topology.proxies) assert.deepEqual(idsOf(await proxyCatalog(proxy)), idsOf(expected));
  });

  it('every registry down: proxies keep routing on their last catalog, and catch up when one returns', TIMEOUT, async () => {
    const topology = t as Topology;
    const survivor = topology.registries[1];
    const address = survivor.address('api');
    await survivor.kill('SIGKILL');
    assert.ok(topology.registries.every((r) => !r.running()));
    for (const proxy of topology.proxies) assert.equal(await servedBy(proxy, 'before'), 'before-1');

    // A registry comes back where the proxies expect one (--registry lists that address).
    const back = await topology.startRegistry([`--api-listen=${address}`]);
    const back1 = await backend('back-1');
    assert.equal((await register(back, { id: 'back-1', service: 'back', port: back1.port })).status, 200);
    await everyProxyRoutesTo('back', 'back-1');
    const expected = await waitConverged(back, topology.proxies);
    assert.deepEqual(Object.keys(idsOf(expected)), ['after', 'back', 'before', 'gap']);
  });
});
