/**
 * The web UI's data in distributed mode: each `switchboard proxy` reports its runtime view
 * over Redis once a second, and the registry's UI endpoints show what every proxy sees — its
 * catalog revision, traffic per instance — and a proxy that stops reporting as stale.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Backend } from '../helpers/backend';
import { waitFor } from '../helpers/child';
import { Topology, httpRequest, register, servedBy, waitConverged } from '../helpers/distributed';

const TIMEOUT = { timeout: 90_000 };

interface Cluster {
  store: { kind: string; healthy: boolean };
  bus: { status: string };
  proxies: Array<{ proxy: string; address: string; rev: number; behind: number; stale: boolean }>;
}

describe('distributed mode: the web UI sees every proxy', TIMEOUT, () => {
  let t: Topology | undefined;
  let web: Backend | undefined;

  before(async () => {
    t = await Topology.start({ registries: 1, proxies: 2 });
    web = await Backend.start('web-0');
  });

  after(async () => {
    await t?.stop();
    await web?.close();
  });

  const cluster = async (): Promise<Cluster> => JSON.parse((await httpRequest((t as Topology).registries[0].url('api', '/v1/switchboard/ui/cluster'))).body) as Cluster;

  it('lists both proxies with their catalog revision, and the traffic one of them sends', TIMEOUT, async () => {
    const topology = t as Topology;
    await register(topology.registries[0], { id: 'web-0', service: 'web', port: (web as Backend).port });
    await waitConverged(topology.registries[0], topology.proxies);
    await waitFor('both proxies reporting, caught up', async () => {
      const c = await cluster();
      return c.proxies.length === 2 && c.proxies.every((p) => !p.stale && p.behind === 0);
    }, 15_000);
    const c = await cluster();
    assert.deepEqual([c.store.kind, c.store.healthy, c.bus.status], ['etcd', true, 'connected']);
    // Traffic through the first proxy, until the registry's UI shows it for the instance.
    await waitFor('the instance traffic reported by the first proxy', async () => {
      for (let i = 0; i < 10; i++) await servedBy(topology.proxies[0], 'web');
      const service = JSON.parse((await httpRequest(topology.registries[0].url('api', '/v1/switchboard/ui/service/web'))).body) as { instances: Array<{ proxies: Array<{ proxy: string; rps?: number }> }> };
      const views = service.instances[0].proxies;
      return views.some((v) => v.proxy.includes(topology.proxies[0].addresses.proxy as string) && (v.rps ?? 0) > 0);
    }, 15_000);
  });

  it('a proxy that stops reporting is shown stale', TIMEOUT, async () => {
    const topology = t as Topology;
    const stopped = topology.proxies[1].addresses.proxy as string;
    await topology.proxies[1].stop();
    await waitFor('the stopped proxy shown stale', async () => (await cluster()).proxies.some((p) => p.address === stopped && p.stale), 15_000);
    const c = await cluster();
    assert.equal(c.proxies.find((p) => p.address !== stopped)?.stale, false);
  });
});
