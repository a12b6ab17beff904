/**
 * Distributed mode when the invalidation bus misbehaves. Redis pub/sub is at-most-once;
 * proxies must converge anyway:
 * - Redis down while instances come and go: proxies keep routing on their last catalog,
 *   and converge to the exact catalog once Redis is back (resync on reconnect), without
 *   a restart; the leader's publisher did not stall meanwhile.
 * - A message whose prevRev does not follow the last one: the proxy counts a gap and resyncs.
 *
 * The proxies' anti-entropy is off (1 h): only reconnects, gaps and messages can help them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { Backend } from '../helpers/backend';
import { waitFor } from '../helpers/child';
import {
  Topology,
  deregister,
  idsOf,
  metricValue,
  proxyCatalog,
  register,
  registryCatalog,
  servedBy,
  waitConverged,
} from '../helpers/distributed';
import type { RoleProcess } from '../helpers/role-process';

const TIMEOUT = { timeout: 60_000 };
const GAP_METRIC = 'switchboard_proxy_catalog_resyncs_total';

describe('distributed mode: Redis faults', TIMEOUT, () => {
  let t: Topology | undefined;
  const backends = new Map<string, Backend>();

  before(async () => {
    t = await Topology.start({ registries: 2, proxies: 2, proxyArgs: ['--resync-interval=1h'] });
    for (const id of ['keep-1', 'drop-1', 'new-1', 'late-1']) backends.set(id, await Backend.start(id));
  });

  after(async () => {
    await t?.stop();
    await Promise.all([...backends.values()].map((b) => b.close()));
  });

  const port = (id: string): number => (backends.get(id) as Backend).port;

  async function everyProxyRoutesTo(service: string, id: string): Promise<void> {
    await waitFor(`every proxy to route ${service} to ${id}`, async () => {
      const answers = await Promise.all((t as Topology).proxies.map((p) => servedBy(p, service)));
      return answers.every((a) => a === id);
    }, 15_000);
  }

  it('Redis down: proxies route on their last catalog, then converge to the exact catalog once it is back', TIMEOUT, async () => {
    const topology = t as Topology;
    const [a, b] = topology.registries;
    assert.equal((await register(a, { id: 'keep-1', service: 'keep', port: port('keep-1') })).status, 200);
    assert.equal((await register(b, { id: 'drop-1', service: 'drop', port: port('drop-1') })).status, 200);
    await everyProxyRoutesTo('keep', 'keep-1');
    await everyProxyRoutesTo('drop', 'drop-1');

    await topology.redis.stop('SIGKILL');
    assert.equal((await register(b, { id: 'new-1', service: 'new', port: port('new-1') })).status, 200);
    assert.equal((await deregister(a, 'drop-1')).status, 200);
    assert.equal((await register(a, { id: 'keep-1', service: 'keep', port: port('keep-1'), tags: ['v2'] })).status, 200);
    for (const proxy of topology.proxies) {
      assert.equal(await servedBy(proxy, 'keep'), 'keep-1', 'still routing while Redis is down');
      assert.deepEqual(idsOf(await proxyCatalog(proxy)).new, undefined, 'no way to hear of new-1 yet');
    }

    await topology.redis.restart();
    const expected = await waitConverged(a, topology.proxies);
    assert.deepEqual(idsOf(expected), { keep: ['keep-1'], new: ['new-1'] });
    assert.deepEqual(expected.services.keep[0].tags, ['v2']);

    // The publisher kept going through the outage: a new change is announced at once.
    assert.equal((await register(b, { id: 'late-1', service: 'late', port: port('late-1') })).status, 200);
    await everyProxyRoutesTo('late', 'late-1');
  });

  it('a message with a wrong prevRev: the proxy detects the gap and resyncs', TIMEOUT, async () => {
    const topology = t as Topology;
    const [registry] = topology.registries;
    // This proxy listens on a channel the registries never publish on: it hears only us.
    const channel = `${topology.channel}:gap`;
    const proxy = await topology.startProxy([`--redis-channel=${channel}`]);
    const redis = new Redis(topology.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      // Its subscription's first connect makes it resync once more: that fetch must be over
      // before the test changes the catalog, or it would bring in what the test announces.
      await waitFor('the gap proxy to subscribe and resync', async () => (await metricValue(proxy, GAP_METRIC, { reason: 'connect' })) >= 1, 15_000);
      await waitConverged(registry, [proxy]);

      // A well-chained message: applied, no gap.
      assert.equal((await register(registry, { id: 'gap-1', service: 'gapped', port: 1 })).status, 200);
      await announce(redis, channel, proxy, registry, 'chained');
      await waitFor('gap-1 to arrive', async () => idsOf(await proxyCatalog(proxy)).gapped?.includes('gap-1') === true, 15_000);
      assert.equal(await metricValue(proxy, GAP_METRIC, { reason: 'gap' }), 0, 'a chained message is not a gap');

      // A message that skips revisions the proxy never saw: a gap.
      assert.equal((await register(registry, { id: 'gap-2', service: 'gapped', port: 2 })).status, 200);
      await announce(redis, channel, proxy, registry, 'skipping');
      await waitFor('the gap to be counted', async () => (await metricValue(proxy, GAP_METRIC, { reason: 'gap' })) === 1, 15_000);
      await waitConverged(registry, [proxy]);
      assert.deepEqual(idsOf(await proxyCatalog(proxy)).gapped, ['gap-1', 'gap-2']);
    } finally {
      redis.disconnect();
    }
  });
});

/** Publish {rev: registry's revision, prevRev} where prevRev follows the proxy's revision or skips ahead. */
async function announce(redis: Redis, channel: string, proxy: RoleProcess, registry: RoleProcess, kind: 'chained' | 'skipping'): Promise<void> {
  const { rev } = await registryCatalog(registry);
  const held = (await proxyCatalog(proxy)).rev;
  assert.ok(rev > held, `the registry (${rev}) is ahead of the proxy (${held})`);
  const prevRev = kind === 'chained' ? held : rev;
  const receivers = await redis.publish(channel, JSON.stringify({ rev, prevRev, services: ['gapped'] }));
  assert.equal(receivers, 1, 'the proxy is subscribed');
}
