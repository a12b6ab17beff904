import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RevWaiters } from '../../src/registry/waiters';

describe('RevWaiters', () => {
  it('releases exactly the callers whose revision was reached, lowest first', async () => {
    const waiters = new RevWaiters();
    const released: number[] = [];
    const waits = [7, 3, 5, 9].map((rev) => waiters.wait(rev, 5000).then((reached) => released.push(reached ? rev : -rev)));
    waiters.reached(2);
    await Promise.resolve();
    assert.equal(waiters.size, 4);
    waiters.reached(6);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(released, [3, 5]);
    assert.equal(waiters.size, 2);
    waiters.abandonAll();
    await Promise.all(waits);
    assert.deepEqual(released, [3, 5, -7, -9]);
    assert.equal(waiters.size, 0);
  });

  it('forgets a wait that timed out, and a later reached() does not resolve it again', async () => {
    const waiters = new RevWaiters();
    const late = waiters.wait(50, 1);
    const kept = waiters.wait(60, 5000);
    assert.equal(await late, false);
    assert.equal(waiters.size, 1);
    waiters.reached(100);
    assert.equal(await kept, true);
    assert.equal(waiters.size, 0);
  });
});
