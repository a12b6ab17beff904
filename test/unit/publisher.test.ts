import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Bus, BusSubscriber, CatalogMessage } from '../../src/bus/bus';
import { silentLogger } from '../../src/log';
import type { ViewChange } from '../../src/registry/catalog-view';
import { Publisher } from '../../src/registry/publisher';
import { FakeElection } from '../helpers/fake-election';

/** A view stand-in the test drives change by change. */
class FakeView {
  private listener?: (change: ViewChange) => void;
  onChange(listener: (change: ViewChange) => void): () => void {
    this.listener = listener;
    return () => (this.listener = undefined);
  }
  emit(rev: number, services: string[]): void {
    this.listener?.({ rev, prevRev: 0, services });
  }
}

/** Records messages; publish takes longer for earlier messages, to catch reordering. */
class SlowBus implements Bus {
  readonly received: CatalogMessage[] = [];
  failNext = false;
  async publish(message: CatalogMessage): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('redis down');
    }
    await new Promise((r) => setTimeout(r, message.rev % 2 === 1 ? 10 : 0));
    this.received.push(message);
  }
  subscribe(_s: BusSubscriber): () => void {
    return () => undefined;
  }
  async close(): Promise<void> {}
}

describe('Publisher', () => {
  it('publishes in revision order, each message chained to the previous one', async () => {
    const view = new FakeView();
    const bus = new SlowBus();
    const publisher = new Publisher({ view, bus, election: new FakeElection(true), logger: silentLogger() });
    publisher.start();
    view.emit(3, ['web']);
    view.emit(4, ['db']);
    view.emit(7, ['web', 'db']);
    await publisher.stop();
    assert.deepEqual(bus.received, [
      { rev: 3, prevRev: 0, services: ['web'] },
      { rev: 4, prevRev: 3, services: ['db'] },
      { rev: 7, prevRev: 4, services: ['web', 'db'] },
    ]);
  });

  it('publishes only while leading', async () => {
    const view = new FakeView();
    const bus = new SlowBus();
    const election = new FakeElection(false);
    const publisher = new Publisher({ view, bus, election, logger: silentLogger() });
    publisher.start();
    view.emit(1, ['web']);
    election.setLeader(true);
    view.emit(2, ['db']);
    await publisher.stop();
    assert.deepEqual(bus.received.map((m) => m.rev), [2]);
  });

  it('keeps going after a failed publish; the gap shows in prevRev', async () => {
    const view = new FakeView();
    const bus = new SlowBus();
    const publisher = new Publisher({ view, bus, election: new FakeElection(true), logger: silentLogger() });
    publisher.start();
    bus.failNext = true;
    view.emit(2, ['web']);
    view.emit(3, ['db']);
    await publisher.stop();
    assert.deepEqual(bus.received, [{ rev: 3, prevRev: 2, services: ['db'] }]);
    assert.equal(publisher.lastPublishedRev, 3);
  });
});
