import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Bus, BusSubscriber, CatalogMessage } from '../../src/bus/bus';
import { DEFAULT_WEIGHTS, type Instance } from '../../src/catalog/model';
import { silentLogger } from '../../src/log';
import { encodeInstance } from '../../src/registry/instance-codec';
import { PUBLISHED_REV_KEY, instanceKey, ttlKey } from '../../src/registry/keys';
import { Publisher } from '../../src/registry/publisher';
import { MemoryStore } from '../helpers/memory-store';
import { waitFor } from '../helpers/child';
import { FakeElection } from '../helpers/fake-election';

/** Records messages; publish takes longer for odd revisions, to catch reordering. */
class SlowBus implements Bus {
  readonly received: CatalogMessage[] = [];
  readonly status = 'test';
  carriesChanges = false;
  failing = false;
  async publish(message: CatalogMessage): Promise<void> {
    if (this.failing) throw new Error('redis down');
    await new Promise((r) => setTimeout(r, message.rev % 2 === 1 ? 10 : 0));
    this.received.push(message);
  }
  subscribe(_s: BusSubscriber): () => void {
    return () => undefined;
  }
  async close(): Promise<void> {}
}

function record(id: string, service: string): Instance {
  return { id, service, address: '127.0.0.1', port: 80, tags: [], meta: {}, weights: DEFAULT_WEIGHTS, checks: [], createIndex: 0, modifyIndex: 0 };
}

async function put(store: MemoryStore, id: string, service: string): Promise<number> {
  return (await store.txn([], [{ kind: 'put', key: instanceKey(id), value: encodeInstance(record(id, service)) }])).rev;
}

async function remove(store: MemoryStore, id: string): Promise<number> {
  return (await store.txn([], [{ kind: 'delete', key: instanceKey(id) }])).rev;
}

/** Where a publisher that starts leading resumes: set so tests don't depend on when it starts. */
async function mark(store: MemoryStore): Promise<number> {
  // Revision 0 is "no mark": a fresh store gets one write first, as the catalog view does.
  if ((await store.range('')).rev === 0) await store.txn([], [{ kind: 'put', key: 'meta/created', value: '{}' }]);
  const { rev } = await store.range('');
  await store.txn([], [{ kind: 'put', key: PUBLISHED_REV_KEY, value: JSON.stringify({ rev }) }]);
  return rev;
}

async function storedRev(store: MemoryStore): Promise<number> {
  const kv = await store.get(PUBLISHED_REV_KEY);
  return kv ? (JSON.parse(kv.value) as { rev: number }).rev : 0;
}

function publisherOver(store: MemoryStore, bus: Bus, election: FakeElection): Publisher {
  return new Publisher({ store, bus, election, logger: silentLogger(), checkpointIntervalMs: 0, retryMs: 10 });
}

/** The publisher has caught up with the store: its last message is at `rev`. */
async function published(publisher: Publisher, rev: number): Promise<void> {
  await waitFor(`a message at revision ${rev}`, () => publisher.lastPublishedRev >= rev, 5000);
}

function assertChained(messages: CatalogMessage[]): void {
  for (let i = 1; i < messages.length; i++) {
    assert.equal(messages[i].prevRev, messages[i - 1].rev, `message ${i} names the previous one`);
    assert.ok(messages[i].rev > messages[i - 1].rev, `message ${i} is later than the previous one`);
  }
}

describe('Publisher', () => {
  it('announces every instance change in revision order, chained, naming the services touched', async () => {
    const store = new MemoryStore();
    const bus = new SlowBus();
    const before = await mark(store);
    const publisher = publisherOver(store, bus, new FakeElection(true));
    publisher.start();
    const r1 = await put(store, 'web-1', 'web');
    const r2 = await put(store, 'db-1', 'db');
    await store.txn([], [{ kind: 'put', key: ttlKey('service:web-1'), value: '{"deadline":1}' }]);
    const r4 = await put(store, 'web-1', 'api'); // moved between services
    const r5 = await remove(store, 'db-1');
    await published(publisher, r5);
    await publisher.stop();
    assert.equal(bus.received[0].prevRev, before);
    assert.deepEqual(
      bus.received.map((m) => [m.rev, m.services]),
      [
        [r1, ['web']],
        [r2, ['db']],
        [r4, ['api', 'web']],
        [r5, ['db']],
      ],
    );
    assertChained(bus.received);
    assert.equal(await storedRev(store), r5, 'the last published revision is stored');
  });

  it('names the old service of an instance last written before it began leading', async () => {
    const store = new MemoryStore();
    const bus = new SlowBus();
    await put(store, 'web-1', 'web');
    await put(store, 'db-1', 'db');
    await mark(store);
    const publisher = publisherOver(store, bus, new FakeElection(true));
    publisher.start();
    const r1 = await put(store, 'web-1', 'api');
    const r2 = await remove(store, 'db-1');
    const r3 = await remove(store, 'web-1');
    await published(publisher, r3);
    await publisher.stop();
    assert.deepEqual(
      bus.received.map((m) => [m.rev, m.services]),
      [
        [r1, ['api', 'web']],
        [r2, ['db']],
        [r3, ['api']],
      ],
    );
  });

  it('publishes only while leading', async () => {
    const store = new MemoryStore();
    const bus = new SlowBus();
    const election = new FakeElection(false);
    const publisher = publisherOver(store, bus, election);
    publisher.start();
    await put(store, 'web-1', 'web');
    await mark(store);
    election.setLeader(true);
    const rev = await put(store, 'db-1', 'db');
    await published(publisher, rev);
    election.setLeader(false);
    await put(store, 'cache-1', 'cache');
    await publisher.stop();
    assert.deepEqual(bus.received.map((m) => m.services), [['db']]);
  });

  it('a new leader resumes from the stored revision: changes nobody announced are announced, chain intact', async () => {
    const store = new MemoryStore();
    const bus = new SlowBus();
    const before = await mark(store);
    const first = publisherOver(store, bus, new FakeElection(true));
    first.start();
    const r1 = await put(store, 'web-1', 'web');
    await published(first, r1);
    await first.stop(); // the old leader is gone; its mark is r1
    assert.equal(await storedRev(store), r1);

    const r2 = await put(store, 'db-1', 'db'); // committed while nobody leads
    const r3 = await remove(store, 'web-1');
    const second = publisherOver(store, bus, new FakeElection(true));
    second.start();
    await published(second, r3);
    await second.stop();
    assert.deepEqual(
      bus.received.map((m) => [m.rev, m.prevRev]),
      [
        [r1, before],
        [r2, r1],
        [r3, r2],
      ],
    );
    assertChained(bus.received);
  });

  it('when the history to replay is compacted, one message names every service', async () => {
    const store = new MemoryStore({ historyLimit: 2 });
    await store.txn([], [{ kind: 'put', key: PUBLISHED_REV_KEY, value: JSON.stringify({ rev: 1 }) }]);
    await put(store, 'web-1', 'web');
    await put(store, 'db-1', 'db');
    await put(store, 'gone-1', 'gone');
    const last = await remove(store, 'gone-1');
    const bus = new SlowBus();
    const publisher = publisherOver(store, bus, new FakeElection(true));
    publisher.start();
    await published(publisher, last);
    await publisher.stop();
    assert.equal(bus.received.length, 1);
    assert.deepEqual(bus.received[0], { rev: last, prevRev: 1, services: ['db', 'web'] });
  });

  it('a failed publish does not stall the chain: the next message names the attempted revision', async () => {
    const store = new MemoryStore();
    const bus = new SlowBus();
    await mark(store);
    const publisher = publisherOver(store, bus, new FakeElection(true));
    publisher.start();
    bus.failing = true;
    const lost = await put(store, 'web-1', 'web');
    await published(publisher, lost);
    bus.failing = false;
    const next = await put(store, 'db-1', 'db');
    await published(publisher, next);
    await publisher.stop();
    // A re-announcement of `lost` may come first (see the next test); the chain goes on from it.
    assert.deepEqual(bus.received.filter((m) => m.rev !== lost), [{ rev: next, prevRev: lost, services: ['db'] }]);
    assert.equal(await storedRev(store), next);
  });

  it('a refused message is announced again until the bus takes it, chained from the last accepted one', async () => {
    const store = new MemoryStore();
    const bus = new SlowBus();
    const before = await mark(store);
    const publisher = publisherOver(store, bus, new FakeElection(true));
    publisher.start();
    bus.failing = true;
    const lost = await put(store, 'web-1', 'web');
    await published(publisher, lost);
    bus.failing = false;
    await waitFor('the re-announcement', () => bus.received.length > 0, 5000);
    await publisher.stop();
    assert.deepEqual(bus.received, [{ rev: lost, prevRev: before, services: ['web'] }]);
  });

  it("a deposed leader's write of the published revision fails (fenced)", async () => {
    const store = new MemoryStore();
    const candidacy = await store.txn([], [{ kind: 'put', key: 'election/a', value: 'a:1' }]);
    const election = new FakeElection(true);
    election.fenceWith = [{ key: 'election/a', modRev: candidacy.rev }];
    const bus = new SlowBus();
    await mark(store);
    const publisher = publisherOver(store, bus, election);
    publisher.start();
    const r1 = await put(store, 'web-1', 'web');
    await published(publisher, r1);
    await waitFor('the mark to reach r1', async () => (await storedRev(store)) === r1);

    await store.txn([], [{ kind: 'delete', key: 'election/a' }]); // our lease ended
    const r2 = await put(store, 'db-1', 'db');
    await published(publisher, r2);
    await publisher.stop();
    assert.equal(await storedRev(store), r1, 'the mark did not move after the candidacy key was gone');
  });

  it('on a bus that carries changes, each message holds the changed instances as the view decodes them; a large batch goes as names', async () => {
    const store = new MemoryStore();
    const bus = new SlowBus();
    bus.carriesChanges = true;
    await mark(store);
    const publisher = publisherOver(store, bus, new FakeElection(true));
    publisher.start();
    const r1 = await put(store, 'web-1', 'web');
    const r2 = await put(store, 'web-1', 'api');
    const r3 = await remove(store, 'web-1');
    const big = Array.from({ length: 400 }, (_, i) => ({ kind: 'put' as const, key: instanceKey(`bulk-${i}`), value: encodeInstance(record(`bulk-${i}`, 'bulk')) }));
    const r4 = (await store.txn([], big)).rev;
    await published(publisher, r4);
    await publisher.stop();
    const [m1, m2, m3, m4] = bus.received;
    assert.deepEqual(m1.changes, [{ id: 'web-1', to: { ...record('web-1', 'web'), createIndex: r1, modifyIndex: r1 } }]);
    assert.deepEqual(m2.changes, [{ id: 'web-1', from: 'web', to: { ...record('web-1', 'api'), createIndex: r1, modifyIndex: r2 } }]);
    assert.deepEqual(m3.changes, [{ id: 'web-1', from: 'api' }]);
    assert.equal(m3.rev, r3);
    assert.equal(m4.changes, undefined, '400 instances are past the size bound: names only');
    assert.deepEqual(m4.services, ['bulk']);
  });
});
