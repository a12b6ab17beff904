/**
 * ACLs on a real Registry on a loopback port, with clients nobody here wrote: the npm
 * `consul` client with and without a token, and a proxy's catalog source (HttpSource) that
 * sends its token and sees only what it may read.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { LocalBus } from '../../src/bus/local-bus';
import { HttpSource } from '../../src/catalog/http-source';
import { silentLogger } from '../../src/log';
import { Registry } from '../../src/registry/registry';
import { MemoryStore } from '../helpers/memory-store';
import { registrySettings } from '../helpers/registry-fixtures';

const ROOT = 'management-secret-for-tests';

describe('ACLs with real clients', () => {
  let store: MemoryStore;
  let registry: Registry;
  let base: string;

  before(async () => {
    store = new MemoryStore();
    await store.open();
    const settings = registrySettings({ maxWait: 600_000 }, {}, { enabled: true, defaultPolicy: 'deny', tokens: { initialManagement: ROOT } });
    registry = new Registry({ store, bus: new LocalBus(), logger: silentLogger(), ...settings });
    await registry.start();
    base = `http://${registry.address}`;
  });

  after(async () => {
    await registry.stop();
    await store.close();
  });

  function client(token?: string): Consul {
    const [host, port] = registry.address.split(':');
    return new Consul({ host, port: Number(port), ...(token ? { defaults: { token } } : {}) });
  }

  it('the npm consul client registers with a token and is refused (403) without one', async () => {
    const withToken = client(ROOT);
    await withToken.agent.service.register({ name: 'web', id: 'web-1', address: '127.0.0.1', port: 8080 });
    await withToken.agent.service.register({ name: 'db', id: 'db-1', address: '127.0.0.1', port: 5432 });
    const anonymous = client();
    await assert.rejects(anonymous.agent.service.register({ name: 'web', id: 'web-2', address: '127.0.0.1', port: 8081 }), (err: { statusCode?: number }) => err.statusCode === 403);
    assert.deepEqual(await anonymous.catalog.service.list(), {}, 'an anonymous reader sees nothing under default deny');
    assert.deepEqual(Object.keys(await withToken.catalog.service.list()).sort(), ['db', 'web']);
    withToken.destroy();
    anonymous.destroy();
  });

  it("a proxy's catalog source sends its token and gets only what it may read", async () => {
    const policy = await fetch(`${base}/v1/acl/policy`, { method: 'PUT', headers: { 'x-consul-token': ROOT }, body: JSON.stringify({ Name: 'web-reader', Rules: 'service "web" { policy = "read" }' }) });
    assert.equal(policy.status, 200);
    const token = await fetch(`${base}/v1/acl/token`, { method: 'PUT', headers: { 'x-consul-token': ROOT }, body: JSON.stringify({ Policies: [{ Name: 'web-reader' }] }) });
    const { SecretID } = (await token.json()) as { SecretID: string };
    const source = new HttpSource(base, { token: SecretID });
    const delta = await source.changes(0);
    assert.deepEqual(Object.keys(delta.services), ['web']);
    await source.close();
    const management = new HttpSource(base, { token: ROOT });
    assert.deepEqual(Object.keys((await management.changes(0)).services).sort(), ['db', 'web']);
    await management.close();
  });
});
