/**
 * Two registries, two proxies, 200 random register/deregister operations through both
 * registries (four writers at once, each on its own instance ids so the expected catalog is
 * known): afterwards the registries agree with the model, and both proxies hold exactly the
 * registries' catalog. Anti-entropy is off (1 h): the bus messages must carry it all.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/child';
import { Topology, deregister, idsOf, proxyCatalog, register, registryCatalog, sameServices, waitConverged } from '../helpers/distributed';

const TIMEOUT = { timeout: 60_000 };
const OPERATIONS = 200;
const WRITERS = 4;
const SERVICES = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];

/** Deterministic pseudo-random numbers (mulberry32): a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

describe('distributed mode: churn through two registries', TIMEOUT, () => {
  let t: Topology | undefined;

  before(async () => {
    t = await Topology.start({ registries: 2, proxies: 2, proxyArgs: ['--resync-interval=1h'] });
  });

  after(async () => {
    await t?.stop();
  });

  it(`after ${OPERATIONS} random operations both proxies hold exactly the registry catalog`, TIMEOUT, async (ctx) => {
    const topology = t as Topology;
    const seed = Date.now() % 100_000;
    ctx.diagnostic(`seed ${seed}`);
    /** instance id → service, for the instances that should exist at the end. */
    const model = new Map<string, string>();

    async function writer(w: number): Promise<void> {
      const next = random(seed + w);
      const mine: string[] = [];
      for (let op = 0; op < OPERATIONS / WRITERS; op++) {
        const registry = topology.registries[Math.floor(next() * topology.registries.length)];
        if (mine.length > 0 && next() < 0.4) {
          const id = mine.splice(Math.floor(next() * mine.length), 1)[0];
          const reply = await deregister(registry, id);
          assert.equal(reply.status, 200, reply.body);
          model.delete(id);
        } else {
          // New instances, and now and then a re-registration that changes one.
          const reuse = mine.length > 0 && next() < 0.2;
          const id = reuse ? mine[Math.floor(next() * mine.length)] : `w${w}-${op}`;
          const service = reuse ? (model.get(id) as string) : SERVICES[Math.floor(next() * SERVICES.length)];
          const reply = await register(registry, { id, service, port: 1000 + Math.floor(next() * 60_000) });
          assert.equal(reply.status, 200, reply.body);
          if (!reuse) mine.push(id);
          model.set(id, service);
        }
      }
    }
    await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));

    const expected: Record<string, string[]> = {};
    for (const [id, service] of model) (expected[service] ??= []).push(id);
    for (const list of Object.values(expected)) list.sort();

    const catalog = await waitConverged(topology.registries[0], topology.proxies);
    assert.deepEqual(idsOf(catalog), Object.fromEntries(Object.entries(expected).sort(([x], [y]) => (x < y ? -1 : 1))));
    await waitFor('both registries to serve the same catalog', async () => sameServices(await registryCatalog(topology.registries[1]), catalog));
    for (const proxy of topology.proxies) assert.ok(sameServices(await proxyCatalog(proxy), catalog));
  });
});
