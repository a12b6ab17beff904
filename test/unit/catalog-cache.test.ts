import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { LocalBus } from '../../src/bus/local-bus';
import { DEFAULT_WEIGHTS, type CatalogDelta, type Instance } from '../../src/catalog/model';
import type { CatalogSource } from '../../src/catalog/source';
import { silentLogger } from '../../src/log';
import { registry } from '../../src/metrics';
import { CatalogCache, type CatalogUpdate } from '../../src/proxy/cache';
import { waitFor as waitUntil } from '../helpers/child';

/** The suite's one waitFor, polling often: a fetch is answered within milliseconds here. */
const waitFor = (condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> => waitUntil(what, condition, timeoutMs, 2);

interface Call {
  since: number;
  minRev: number | undefined;
  respond(delta: CatalogDelta): void;
  fail(err: Error): void;
}

/** A source whose every answer the test gives by hand. */
class ScriptedSource implements CatalogSource {
  readonly calls: Call[] = [];
  private taken = 0;

  changes(since: number, minRev?: number): Promise<CatalogDelta> {
    return new Promise((respond, fail) => this.calls.push({ since, minRev, respond, fail }));
  }

  async close(): Promise<void> {}

  async next(): Promise<Call> {
    await waitFor(() => this.calls.length > this.taken, `source call #${this.taken + 1}`);
    return this.calls[this.taken++];
  }
}

function instance(service: string, id: string, port = 8000, output = ''): Instance {
  return {
    id,
    service,
    address: '10.0.0.1',
    port,
    tags: [],
    meta: {},
    weights: { ...DEFAULT_WEIGHTS },
    checks: [{ checkId: `${id}:ttl`, name: 'ttl', type: 'ttl', status: 'passing', output, statusSince: 1 }],
    createIndex: 1,
    modifyIndex: 1,
  };
}

const delta = (rev: number, services: Record<string, Instance[]>, full = false): CatalogDelta => ({ rev, full, services });

async function resyncCount(reason: string): Promise<number> {
  const metric = registry.getSingleMetric('switchboard_proxy_catalog_resyncs_total');
  const values = (await metric?.get())?.values ?? [];
  return values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

let cleanup: Array<() => void> = [];
afterEach(() => {
  cleanup.forEach((fn) => fn());
  cleanup = [];
});

/** A started cache over a scripted source, synced to `services` at rev 1. */
async function syncedCache(services: Record<string, Instance[]>, options: { resyncIntervalMs?: number } = {}) {
  const source = new ScriptedSource();
  const bus = new LocalBus();
  const cache = new CatalogCache({
    source,
    bus,
    logger: silentLogger(),
    resyncIntervalMs: options.resyncIntervalMs ?? 0,
    retryBaseMs: 5,
    retryMaxMs: 20,
  });
  const updates: CatalogUpdate[] = [];
  cache.onUpdate((u) => updates.push(u));
  cleanup.push(() => cache.stop());
  cache.start();
  const first = await source.next();
  assert.equal(first.since, 0);
  first.respond(delta(1, services, true));
  // LocalBus reports "connected" right after subscribing: one more, cheap, fetch.
  const onConnect = await source.next();
  assert.equal(onConnect.since, 1);
  onConnect.respond(delta(1, {}));
  await cache.idle();
  return { source, bus, cache, updates };
}

describe('CatalogCache', () => {
  it('becomes ready with the first full catalog and reports every service', async () => {
    const { cache, updates } = await syncedCache({ a: [instance('a', 'a1')], b: [instance('b', 'b1')] });
    assert.equal(cache.ready, true);
    assert.equal(cache.rev, 1);
    assert.deepEqual([...updates[0].services.keys()].sort(), ['a', 'b']);
    assert.equal(updates.length, 1, 'the no-change fetch emits nothing');
  });

  it('is not ready before its first sync', () => {
    const cache = new CatalogCache({ source: new ScriptedSource(), bus: new LocalBus(), logger: silentLogger(), resyncIntervalMs: 0 });
    cleanup.push(() => cache.stop());
    cache.start();
    assert.equal(cache.ready, false);
  });

  it('applies the services a message announces, asking the source for at least its revision', async () => {
    const { source, bus, cache, updates } = await syncedCache({ a: [instance('a', 'a1')] });
    await bus.publish({ rev: 2, prevRev: 1, services: ['a'] });
    const call = await source.next();
    assert.deepEqual([call.since, call.minRev], [1, 2]);
    call.respond(delta(2, { a: [instance('a', 'a1'), instance('a', 'a2')] }));
    await cache.idle();
    assert.equal(cache.rev, 2);
    assert.deepEqual(cache.instances('a')?.map((i) => i.id), ['a1', 'a2']);
    assert.deepEqual([...updates[1].services.keys()], ['a']);
  });

  it('a forged announcement far ahead of the registry is ignored after one wait, and does not hide the next real one', async () => {
    const { source, bus, cache } = await syncedCache({ a: [instance('a', 'a1')] });
    await bus.publish({ rev: 1_000_000_000, prevRev: 1, services: ['a'] });
    const forged = await source.next();
    assert.equal(forged.minRev, 1_000_000_000);
    // A real change is announced while the registry waits for a revision it will never reach.
    await bus.publish({ rev: 2, prevRev: 1, services: ['b'] });
    forged.respond(delta(1, {}));
    // One more fetch at once, without waiting on any revision: it brings the real change.
    const fresh = await source.next();
    assert.deepEqual([fresh.since, fresh.minRev], [1, undefined]);
    fresh.respond(delta(2, { b: [instance('b', 'b1')] }));
    await cache.idle();
    assert.equal(cache.rev, 2);
    // Later real messages are not taken for old news.
    await bus.publish({ rev: 3, prevRev: 2, services: ['a'] });
    const next = await source.next();
    assert.deepEqual([next.since, next.minRev], [2, 3]);
    next.respond(delta(3, {}));
    await cache.idle();
  });

  it('ignores messages at or below its revision', async () => {
    const { source, bus } = await syncedCache({ a: [instance('a', 'a1')] });
    const before = source.calls.length;
    await bus.publish({ rev: 1, prevRev: 0, services: ['a'] });
    await bus.publish({ rev: 0, prevRev: 0, services: ['a'] });
    assert.equal(source.calls.length, before);
  });

  it('resyncs on a prevRev gap and counts it', async () => {
    const { source, bus, cache } = await syncedCache({ a: [instance('a', 'a1')] });
    const gaps = await resyncCount('gap');
    await bus.publish({ rev: 5, prevRev: 4, services: ['b'] });
    const call = await source.next();
    assert.deepEqual([call.since, call.minRev], [1, 5]);
    call.respond(delta(5, { a: [instance('a', 'a1')], b: [instance('b', 'b1')] }));
    await cache.idle();
    assert.equal(await resyncCount('gap'), gaps + 1);
    assert.deepEqual([...cache.services().keys()].sort(), ['a', 'b']);
  });

  it('does not call consecutive messages a gap', async () => {
    const { source, bus } = await syncedCache({ a: [instance('a', 'a1')] });
    const gaps = await resyncCount('gap');
    await bus.publish({ rev: 2, prevRev: 1, services: ['a'] });
    await bus.publish({ rev: 3, prevRev: 2, services: ['a'] });
    (await source.next()).respond(delta(3, {}));
    assert.equal(await resyncCount('gap'), gaps);
  });

  it('keeps serving the last catalog when the source fails, and retries until it recovers', async () => {
    const { source, bus, cache } = await syncedCache({ a: [instance('a', 'a1')] });
    await bus.publish({ rev: 2, prevRev: 1, services: ['a'] });
    (await source.next()).fail(new Error('registry down'));
    await cache.idle();
    assert.equal(cache.ready, true);
    assert.deepEqual(cache.instances('a')?.map((i) => i.id), ['a1']);
    const retry = await source.next();
    retry.fail(new Error('still down'));
    const again = await source.next();
    again.respond(delta(2, { a: [] }));
    await waitFor(() => cache.rev === 2, 'the retried fetch to apply');
    assert.equal(cache.instances('a'), undefined);
  });

  it('treats a malformed answer like a failure and keeps the last catalog', async () => {
    const { source, bus, cache } = await syncedCache({ a: [instance('a', 'a1')] });
    await bus.publish({ rev: 2, prevRev: 1, services: ['a'] });
    (await source.next()).respond({ rev: 2, full: false } as unknown as CatalogDelta);
    const retry = await source.next();
    assert.equal(cache.rev, 1);
    assert.deepEqual(cache.instances('a')?.map((i) => i.id), ['a1']);
    retry.respond(delta(2, {}));
    await waitFor(() => cache.rev === 2, 'the retry to apply');
  });

  it('runs one fetch at a time and folds messages that arrive meanwhile into one more', async () => {
    const { source, bus, cache } = await syncedCache({ a: [instance('a', 'a1')] });
    const before = source.calls.length;
    await bus.publish({ rev: 2, prevRev: 1, services: ['a'] });
    const first = await source.next();
    await bus.publish({ rev: 3, prevRev: 2, services: ['a'] });
    await bus.publish({ rev: 4, prevRev: 3, services: ['a'] });
    assert.equal(source.calls.length, before + 1, 'no second fetch while one runs');
    first.respond(delta(2, {}));
    const second = await source.next();
    assert.deepEqual([second.since, second.minRev], [2, 4]);
    second.respond(delta(4, {}));
    await cache.idle();
    assert.equal(cache.rev, 4);
    assert.equal(source.calls.length, before + 2);
  });

  it('skips the follow-up fetch when the running one already covered the messages', async () => {
    const { source, bus, cache } = await syncedCache({ a: [instance('a', 'a1')] });
    const before = source.calls.length;
    await bus.publish({ rev: 2, prevRev: 1, services: ['a'] });
    const first = await source.next();
    await bus.publish({ rev: 3, prevRev: 2, services: ['a'] });
    first.respond(delta(3, {}));
    await cache.idle();
    assert.equal(source.calls.length, before + 1);
  });

  it('never applies a delta older than its revision', async () => {
    const { source, cache, updates } = await syncedCache({ a: [instance('a', 'a1')] });
    const resync = cache.resync('periodic');
    (await source.next()).respond(delta(0, { z: [instance('z', 'z1')] }, true));
    await resync;
    assert.equal(cache.rev, 1);
    assert.deepEqual([...cache.services().keys()], ['a']);
    assert.equal(updates.length, 1);
  });

  it('drops updates that change nothing the proxy routes on', async () => {
    const { source, bus, cache, updates } = await syncedCache({ a: [instance('a', 'a1')] });
    await bus.publish({ rev: 2, prevRev: 1, services: ['a'] });
    const heartbeat = { ...instance('a', 'a1', 8000, 'TTL passed'), modifyIndex: 2 };
    (await source.next()).respond(delta(2, { a: [heartbeat] }));
    await cache.idle();
    assert.equal(updates.length, 1, 'a heartbeat is no change');
    assert.equal(cache.instances('a')?.[0].checks[0].output, 'TTL passed', 'the cache still holds the latest record');
    await bus.publish({ rev: 3, prevRev: 2, services: ['a'] });
    (await source.next()).respond(delta(3, { a: [instance('a', 'a1', 9000)] }));
    await cache.idle();
    assert.equal(updates.length, 2, 'a port change is a change');
  });

  it('treats instance order as no change', async () => {
    const { source, cache, updates } = await syncedCache({ a: [instance('a', 'a1'), instance('a', 'a2')] });
    const resync = cache.resync('periodic');
    (await source.next()).respond(delta(2, { a: [instance('a', 'a2'), instance('a', 'a1')] }, true));
    await resync;
    assert.equal(updates.length, 1);
  });

  it('replaces the whole catalog on a full delta, reporting removed services as empty', async () => {
    const { source, cache, updates } = await syncedCache({ a: [instance('a', 'a1')], b: [instance('b', 'b1')] });
    const resync = cache.resync('periodic');
    (await source.next()).respond(delta(7, { b: [instance('b', 'b1')], c: [instance('c', 'c1')] }, true));
    await resync;
    const last = updates[updates.length - 1];
    assert.deepEqual(
      [...last.services].map(([name, list]) => [name, list.length]).sort(),
      [
        ['a', 0],
        ['c', 1],
      ],
    );
    assert.deepEqual([...cache.services().keys()].sort(), ['b', 'c']);
  });

  it('resyncs on every (re)connect and counts it', async () => {
    const { source, cache } = await syncedCache({ a: [instance('a', 'a1')] });
    const connects = await resyncCount('connect');
    cache.onConnect();
    const call = await source.next();
    assert.deepEqual([call.since, call.minRev], [1, undefined]);
    call.respond(delta(1, {}));
    assert.equal(await resyncCount('connect'), connects + 1);
  });

  it('checks the source periodically', async () => {
    const periodic = await resyncCount('periodic');
    const { source } = await syncedCache({ a: [instance('a', 'a1')] }, { resyncIntervalMs: 10 });
    const call = await source.next();
    assert.equal(call.since, 1);
    call.respond(delta(1, {}));
    assert.ok((await resyncCount('periodic')) > periodic);
  });

  it('keeps working when a listener throws', async () => {
    const { source, bus, cache } = await syncedCache({ a: [instance('a', 'a1')] });
    cache.onUpdate(() => {
      throw new Error('listener bug');
    });
    await bus.publish({ rev: 2, prevRev: 1, services: ['b'] });
    (await source.next()).respond(delta(2, { b: [instance('b', 'b1')] }));
    await cache.idle();
    assert.equal(cache.rev, 2);
  });
});

describe('CatalogCache with changes carried by the bus', () => {
  const frozen = (i: Instance): Instance => Object.freeze(i);

  it('applies a message\'s changes without asking the source: add, move between services, remove', async () => {
    const { source, bus, cache, updates } = await syncedCache({ a: [instance('a', 'a1')], b: [instance('b', 'b1')] });
    const calls = source.calls.length;
    await bus.publish({ rev: 2, prevRev: 1, services: ['a'], changes: [{ id: 'a2', to: frozen(instance('a', 'a2')) }] });
    assert.equal(cache.rev, 2);
    assert.deepEqual(cache.instances('a')?.map((i) => i.id), ['a1', 'a2']);
    // a1 moves to b; b1 is deregistered — one revision, heartbeat revisions in between are fine.
    await bus.publish({ rev: 7, prevRev: 2, services: ['a', 'b'], changes: [{ id: 'a1', from: 'a', to: frozen(instance('b', 'a1')) }, { id: 'b1', from: 'b' }] });
    assert.equal(cache.rev, 7);
    assert.deepEqual(cache.instances('a')?.map((i) => i.id), ['a2']);
    assert.deepEqual(cache.instances('b')?.map((i) => i.id), ['a1']);
    await bus.publish({ rev: 8, prevRev: 7, services: ['a'], changes: [{ id: 'a2', from: 'a' }] });
    assert.equal(cache.instances('a'), undefined, 'a service left empty is gone');
    assert.equal(source.calls.length, calls, 'no fetch');
    assert.deepEqual([...updates[updates.length - 1].services.entries()], [['a', []]]);
  });

  it('a message whose prevRev is past our revision (a missed message) is fetched, changes or not', async () => {
    const { source, bus, cache } = await syncedCache({ a: [instance('a', 'a1')] });
    await bus.publish({ rev: 5, prevRev: 4, services: ['a'], changes: [{ id: 'a2', to: frozen(instance('a', 'a2')) }] });
    const call = await source.next();
    assert.deepEqual([call.since, call.minRev], [1, 5]);
    assert.deepEqual(cache.instances('a')?.map((i) => i.id), ['a1'], 'nothing applied from the message');
    call.respond(delta(5, { a: [instance('a', 'a1'), instance('a', 'a9'), instance('a', 'a2')] }));
    await cache.idle();
    assert.deepEqual(cache.instances('a')?.map((i) => i.id), ['a1', 'a2', 'a9']);
  });

  it('while a fetch is under way a message is not applied but asked for', async () => {
    const { source, bus, cache } = await syncedCache({ a: [instance('a', 'a1')] });
    void cache.resync('periodic');
    const running = await source.next();
    await bus.publish({ rev: 2, prevRev: 1, services: ['a'], changes: [{ id: 'a2', to: frozen(instance('a', 'a2')) }] });
    assert.equal(cache.rev, 1);
    running.respond(delta(1, {}));
    const next = await source.next();
    assert.deepEqual([next.since, next.minRev], [1, 2]);
    next.respond(delta(2, { a: [instance('a', 'a1'), instance('a', 'a2')] }));
    await cache.idle();
    assert.equal(cache.rev, 2);
  });
});
