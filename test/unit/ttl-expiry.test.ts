import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { CatalogView } from '../../src/registry/catalog-view';
import { CatalogWriter, type RegistrationSpec } from '../../src/registry/catalog-writer';
import { TtlExpiryLoop } from '../../src/registry/checks/ttl-expiry';
import { MemoryStore } from '../../src/registry/store/memory-store';
import { waitFor } from '../helpers/child';
import { FakeElection } from '../helpers/fake-election';

const spec = (id: string, ttlMs: number): RegistrationSpec => ({
  id,
  service: 'web',
  address: '10.0.0.1',
  port: 80,
  tags: [],
  meta: {},
  weights: { passing: 1, warning: 1 },
  checks: [{ checkId: `service:${id}`, name: 'ttl', type: 'ttl', ttlMs, status: 'passing' }],
  replaceExistingChecks: false,
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(leading: boolean) {
  const store = new MemoryStore();
  await store.open();
  const view = new CatalogView(store, { logger: silentLogger() });
  await view.start();
  const writer = new CatalogWriter({ store, view });
  const election = new FakeElection(leading);
  const loop = new TtlExpiryLoop({ view, writer, election, logger: silentLogger() });
  cleanups.push(() => store.close(), () => view.stop(), () => loop.stop());
  return { store, view, writer, election, loop };
}

const status = (view: CatalogView, id: string) => view.instance(id)?.checks[0].status;

describe('TtlExpiryLoop', () => {
  it('does nothing while following, and catches up when it becomes leader', async () => {
    const { view, writer, election, loop } = await setup(false);
    loop.start();
    await writer.register(spec('web-1', 20));
    const registeredAt = Date.now();
    await waitFor('the deadline to pass', () => Date.now() > registeredAt + 100);
    assert.equal(status(view, 'web-1'), 'passing', 'a follower never expires checks');
    election.setLeader(true);
    await waitFor('the leader to expire it', () => status(view, 'web-1') === 'critical', 5000);
  });

  it('wakes for the earliest deadline even when it was registered after a later one', async () => {
    const { view, writer, loop } = await setup(true);
    loop.start();
    await writer.register(spec('slow', 3_600_000));
    await writer.register(spec('fast', 50));
    await waitFor('the short TTL to lapse', () => status(view, 'fast') === 'critical', 5000);
    assert.equal(status(view, 'slow'), 'passing');
  });

  it('loses to a heartbeat that lands first', async () => {
    const { view, writer } = await setup(true);
    await writer.register(spec('web-1', 1));
    await waitFor('the deadline to pass', () => (view.ttlDeadline('service:web-1') ?? Infinity) < Date.now());
    const ttl = 60_000;
    await writer.register(spec('web-1', ttl));
    // The re-registration moved the deadline; a stale expiry attempt must find nothing due.
    assert.equal(await writer.expireCheck('web-1', 'service:web-1'), undefined);
    assert.equal(status(view, 'web-1'), 'passing');
  });

  it('stops cleanly with a timer armed', async () => {
    const { writer, loop } = await setup(true);
    loop.start();
    await writer.register(spec('web-1', 3_600_000));
    await loop.stop();
  });
});
