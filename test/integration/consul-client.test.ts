/**
 * The npm `consul` client (v2), unchanged, against a real Registry on a loopback port: the
 * compatibility promise of the registry API.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { LocalBus } from '../../src/bus/local-bus';
import { silentLogger } from '../../src/log';
import { Registry } from '../../src/registry/registry';
import { MemoryStore } from '../helpers/memory-store';
import { waitFor } from '../helpers/child';
import { registrySettings } from '../helpers/registry-fixtures';

type HealthEntry = { Service: { ID: string; Port: number }; Checks: { Status: string }[] };

describe('npm consul client against a Registry', () => {
  let store: MemoryStore;
  let registry: Registry | undefined;
  let consul: Consul;

  before(async () => {
    store = new MemoryStore();
    await store.open();
    registry = new Registry({ store, bus: new LocalBus(), logger: silentLogger(), ...registrySettings({ maxWait: 600_000 }) });
    await registry.start();
    const [host, port] = registry.address.split(':');
    consul = new Consul({ host, port: Number(port) });
  });

  after(async () => {
    consul?.destroy();
    await registry?.stop();
    await store.close();
  });

  it('registers with a TTL check that is critical until the first pass', async () => {
    await consul.agent.service.register({ name: 'web', id: 'web-1', address: '127.0.0.1', port: 8080, tags: ['v1'], check: { ttl: '30s' } as never });
    const before = (await consul.health.service({ service: 'web', passing: true })) as HealthEntry[];
    assert.deepEqual(before, []);
    await consul.agent.check.pass('service:web-1');
    const after = (await consul.health.service({ service: 'web', passing: true })) as HealthEntry[];
    assert.deepEqual(after.map((e) => [e.Service.ID, e.Service.Port, e.Checks[0].Status]), [['web-1', 8080, 'passing']]);
  });

  it('lists services with their tags in the catalog and the agent', async () => {
    const services = await consul.catalog.service.list();
    assert.deepEqual(services.web, ['v1']);
    const agentServices = await consul.agent.service.list();
    assert.equal(agentServices['web-1'].Service, 'web');
  });

  it('a watch on a blocking health query sees an instance come, pass, and go', async () => {
    const seen: HealthEntry[][] = [];
    const errors: unknown[] = [];
    const watch = consul.watch({
      method: consul.health.service,
      options: { service: 'api', passing: true, wait: '30s' } as unknown as Record<string, string>,
    });
    watch.on('change', (data: HealthEntry[]) => seen.push(data));
    watch.on('error', (err: unknown) => errors.push(err));
    try {
      await waitFor('the first answer', () => seen.length >= 1);
      assert.deepEqual(seen[0], []);
      await consul.agent.service.register({ name: 'api', id: 'api-1', port: 9000, check: { ttl: '30s' } as never });
      await consul.agent.check.pass('service:api-1');
      await waitFor('api-1 to show up passing', () => seen.some((d) => d.length === 1));
      assert.equal(seen.find((d) => d.length === 1)?.[0].Service.ID, 'api-1');
      await consul.agent.service.deregister('api-1');
      await waitFor('api-1 to be gone', () => seen.length >= 3 && seen[seen.length - 1].length === 0);
      assert.deepEqual(errors, []);
    } finally {
      watch.end();
    }
  });

  it('sees a TTL lapse as critical through the health endpoint', async () => {
    await consul.agent.service.register({ name: 'job', id: 'job-1', port: 1, check: { ttl: '200ms', status: 'passing' } as never });
    await waitFor('the TTL to lapse', async () => {
      const entries = (await consul.health.service({ service: 'job' })) as HealthEntry[];
      return entries[0]?.Checks[0].Status === 'critical';
    });
    assert.deepEqual(await consul.health.service({ service: 'job', passing: true }), []);
  });

  it('deregisters, and a second deregister is a 404', async () => {
    await consul.agent.service.deregister('web-1');
    assert.deepEqual(await consul.health.service({ service: 'web' }), []);
    await assert.rejects(consul.agent.service.deregister('web-1'), (err: { response?: { statusCode?: number } }) => err.response?.statusCode === 404);
  });

  it('reports the leader', async () => {
    assert.equal(await consul.status.leader(), registry?.address);
  });
});
