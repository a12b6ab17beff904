import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChangeRing } from '../../src/registry/change-ring';

describe('ChangeRing', () => {
  it('answers what changed after a revision it still remembers', () => {
    const ring = new ChangeRing(4, 10);
    ring.record(11, ['a']);
    ring.record(12, ['b', 'c']);
    ring.record(14, ['a']);
    assert.deepEqual(ring.changedSince(10), new Set(['a', 'b', 'c']));
    assert.deepEqual(ring.changedSince(12), new Set(['a']));
    assert.deepEqual(ring.changedSince(14), new Set());
  });

  it('forgets the oldest changes once full, and says so for revisions before them', () => {
    const ring = new ChangeRing(3, 0);
    for (let rev = 1; rev <= 7; rev++) ring.record(rev, [`s${rev}`]);
    // Remembers 5, 6, 7: everything after revision 4.
    assert.equal(ring.changedSince(3), undefined);
    assert.deepEqual(ring.changedSince(4), new Set(['s5', 's6', 's7']));
    assert.deepEqual(ring.changedSince(6), new Set(['s7']));
  });

  it('starts over after reset()', () => {
    const ring = new ChangeRing(2, 0);
    for (let rev = 1; rev <= 5; rev++) ring.record(rev, [`s${rev}`]);
    ring.reset(100);
    assert.equal(ring.changedSince(99), undefined);
    assert.deepEqual(ring.changedSince(100), new Set());
    ring.record(101, ['x']);
    ring.record(102, ['y']);
    ring.record(103, ['z']);
    assert.deepEqual(ring.changedSince(101), new Set(['y', 'z']));
    assert.equal(ring.changedSince(100), undefined);
  });
});
