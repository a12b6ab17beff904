/**
 * Distributed mode with a bus key: the leader's messages are signed and carry the changed
 * instances, so proxies apply a change without asking a registry; and what someone else
 * publishes on the same Redis channel never routes anything. The proxies' anti-entropy is off
 * (1 h): only messages can move them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { encodeMessage } from '../../src/bus/message-codec';
import { DEFAULT_WEIGHTS } from '../../src/catalog/model';
import { Backend } from '../helpers/backend';
import { waitFor } from '../helpers/child';
import { Topology, deregister, metricValue, register, servedBy } from '../helpers/distributed';

const TIMEOUT = { timeout: 60_000 };
const KEY = 'distributed-test-bus-key-0123456789';

describe('distributed mode: signed bus messages that carry the changes', TIMEOUT, () => {
  let t: Topology | undefined;
  let real: Backend;
  let forged: Backend;

  before(async () => {
    t = await Topology.start({ registries: 2, proxies: 2, registryArgs: [`--redis-key=${KEY}`], proxyArgs: [`--redis-key=${KEY}`, '--resync-interval=1h'] });
    [real, forged] = await Promise.all([Backend.start('real-1'), Backend.start('forged-1')]);
  });

  after(async () => {
    await t?.stop();
    await Promise.all([real?.close(), forged?.close()]);
  });

  async function everyProxy(what: string, test: (answer: string | undefined) => boolean): Promise<void> {
    await waitFor(what, async () => (await Promise.all((t as Topology).proxies.map((p) => servedBy(p, 'pay')))).every(test), 15_000);
  }

  it('proxies apply a registration and a deregistration from the messages themselves', TIMEOUT, async () => {
    const topology = t as Topology;
    const before = await Promise.all(topology.proxies.map((p) => metricValue(p, 'switchboard_proxy_catalog_bus_changes_applied_total')));
    assert.equal((await register(topology.registries[1], { id: 'real-1', service: 'pay', port: real.port })).status, 200);
    await everyProxy('every proxy to route pay to real-1', (a) => a === 'real-1');
    const after = await Promise.all(topology.proxies.map((p) => metricValue(p, 'switchboard_proxy_catalog_bus_changes_applied_total')));
    after.forEach((n, i) => assert.ok(n > before[i], `proxy ${i} applied a change from the bus`));
    assert.equal((await deregister(topology.registries[0], 'real-1')).status, 200);
    await everyProxy('every proxy to stop routing pay', (a) => a === undefined);
    assert.equal((await register(topology.registries[0], { id: 'real-1', service: 'pay', port: real.port })).status, 200);
    await everyProxy('pay back on real-1', (a) => a === 'real-1');
  });

  it('an unsigned message with changes, or one signed with another key, routes nothing', TIMEOUT, async () => {
    const topology = t as Topology;
    const proxy = topology.proxies[0];
    const redis = new Redis(topology.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      const hijack = {
        rev: 1_000_000,
        prevRev: 0,
        services: ['pay'],
        changes: [{ id: 'forged-1', from: 'pay', to: { id: 'forged-1', service: 'pay', address: '127.0.0.1', port: forged.port, tags: [], meta: {}, weights: DEFAULT_WEIGHTS, checks: [], createIndex: 1, modifyIndex: 1 } }],
      };
      const unverifiedBefore = await metricValue(proxy, 'switchboard_bus_changes_ignored_total', { reason: 'unverified' });
      const badBefore = await metricValue(proxy, 'switchboard_bus_messages_dropped_total', { reason: 'bad_signature' });
      await redis.publish(topology.channel, JSON.stringify(hijack));
      await redis.publish(topology.channel, encodeMessage(hijack, 'somebody-elses-key-0123456789'));
      await waitFor('both forgeries counted', async () =>
        (await metricValue(proxy, 'switchboard_bus_changes_ignored_total', { reason: 'unverified' })) > unverifiedBefore &&
        (await metricValue(proxy, 'switchboard_bus_messages_dropped_total', { reason: 'bad_signature' })) > badBefore,
      );
      for (let i = 0; i < 20; i++) assert.equal(await servedBy(proxy, 'pay'), 'real-1');
      assert.equal(forged.requests, 0);
    } finally {
      redis.disconnect();
    }
  });
});
