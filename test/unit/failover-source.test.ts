import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FailoverSource } from '../../src/catalog/failover-source';
import type { CatalogDelta } from '../../src/catalog/model';
import type { CatalogSource } from '../../src/catalog/source';
import { SwitchboardError, isSwitchboardError } from '../../src/errors';

/** A registry stand-in: answers with its own revision, or fails the way it is told to. */
class FakeRegistry implements CatalogSource {
  calls = 0;
  failWith?: SwitchboardError;
  constructor(readonly rev: number) {}
  async changes(): Promise<CatalogDelta> {
    this.calls++;
    if (this.failWith) throw this.failWith;
    return { rev: this.rev, full: true, services: {} };
  }
  async close(): Promise<void> {}
}

const down = (): SwitchboardError => new SwitchboardError('store_unavailable', 'connection refused');

function over(...registries: FakeRegistry[]): FailoverSource {
  return new FailoverSource(registries.map((source, i) => ({ name: `r${i + 1}`, source })));
}

describe('FailoverSource', () => {
  it('asks the first registry while it answers', async () => {
    const [a, b] = [new FakeRegistry(1), new FakeRegistry(2)];
    const source = over(a, b);
    assert.equal((await source.changes(0)).rev, 1);
    assert.equal((await source.changes(0)).rev, 1);
    assert.deepEqual([a.calls, b.calls], [2, 0]);
  });

  it('moves to the next registry when one is unavailable, and sticks to it', async () => {
    const [a, b, c] = [new FakeRegistry(1), new FakeRegistry(2), new FakeRegistry(3)];
    const source = over(a, b, c);
    a.failWith = down();
    assert.equal((await source.changes(0)).rev, 2);
    assert.equal(source.active, 'r2');
    a.failWith = undefined;
    assert.equal((await source.changes(0)).rev, 2, 'no need to go back while r2 answers');
    b.failWith = down();
    assert.equal((await source.changes(0)).rev, 3);
    c.failWith = down();
    assert.equal((await source.changes(0)).rev, 1, 'wraps around to the first');
  });

  it('rejects with store_unavailable when every registry is down', async () => {
    const [a, b] = [new FakeRegistry(1), new FakeRegistry(2)];
    a.failWith = down();
    b.failWith = down();
    await assert.rejects(over(a, b).changes(0), (err) => isSwitchboardError(err, 'store_unavailable'));
    assert.deepEqual([a.calls, b.calls], [1, 1]);
  });

  it('passes on an answer that is not about availability without asking another registry', async () => {
    const [a, b] = [new FakeRegistry(1), new FakeRegistry(2)];
    a.failWith = new SwitchboardError('bad_request', 'since: not a revision');
    await assert.rejects(over(a, b).changes(0), (err) => isSwitchboardError(err, 'bad_request'));
    assert.equal(b.calls, 0);
  });

  it('needs at least one registry', () => {
    assert.throws(() => new FailoverSource([]), (err) => isSwitchboardError(err, 'config_invalid'));
  });
});
