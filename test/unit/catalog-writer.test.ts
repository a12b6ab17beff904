import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { isSwitchboardError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { CatalogView } from '../../src/registry/catalog-view';
import { CatalogWriter, type RegistrationSpec } from '../../src/registry/catalog-writer';
import { WrappedStore } from '../helpers/wrapped-store';

const spec: RegistrationSpec = {
  id: 'web-1',
  service: 'web',
  address: '10.0.0.1',
  port: 80,
  tags: [],
  meta: {},
  weights: { passing: 1, warning: 1 },
  checks: [
    { checkId: 'a', name: 'a', type: 'ttl', ttlMs: 60_000 },
    { checkId: 'b', name: 'b', type: 'ttl', ttlMs: 60_000 },
  ],
  replaceExistingChecks: false,
};

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Two registries (view + writer each) over one store, as with etcd. */
async function twoRegistries() {
  const store = new WrappedStore();
  await store.open();
  cleanups.push(() => store.close());
  const make = async () => {
    const view = new CatalogView(store, { logger: silentLogger() });
    await view.start();
    cleanups.push(() => view.stop());
    return { view, writer: new CatalogWriter({ store, view }) };
  };
  return { store, one: await make(), two: await make() };
}

describe('CatalogWriter', () => {
  it('loses no update when two registries change one instance at the same time', async () => {
    const { store, one, two } = await twoRegistries();
    await one.writer.register(spec);
    const txnsBefore = store.txnCount;
    await Promise.all([one.writer.updateCheck('a', 'passing', 'from one'), two.writer.updateCheck('b', 'warning', 'from two')]);
    assert.ok(store.txnCount > txnsBefore + 2, 'one of them had to retry');
    const checks = one.view.instance('web-1')?.checks.map((c) => [c.checkId, c.status, c.output]);
    assert.deepEqual(checks, [
      ['a', 'passing', 'from one'],
      ['b', 'warning', 'from two'],
    ]);
    assert.deepEqual(two.view.instance('web-1')?.checks, one.view.instance('web-1')?.checks);
  });

  it('a re-registration racing a status change keeps the status', async () => {
    const { one, two } = await twoRegistries();
    await one.writer.register(spec);
    await Promise.all([one.writer.register({ ...spec, port: 81 }), two.writer.updateCheck('a', 'passing', '')]);
    const instance = one.view.instance('web-1');
    assert.equal(instance?.port, 81);
    assert.equal(instance?.checks.find((c) => c.checkId === 'a')?.status, 'passing');
  });

  it('wraps store failures as store_unavailable and deregistering an unknown ID as not_found', async () => {
    const { store, one } = await twoRegistries();
    await assert.rejects(one.writer.deregister('nope'), (err: unknown) => isSwitchboardError(err, 'not_found'));
    store.failing = true;
    await assert.rejects(one.writer.register(spec), (err: unknown) => isSwitchboardError(err, 'store_unavailable'));
    store.failing = false;
  });
});
