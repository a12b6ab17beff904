/**
 * The benchmark's paired ratio: round i of one peer against round i of the other, so a noisy
 * stretch that slowed both alike cancels out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describePaired, pairedMedian, pairedRatio } from '../../bench/stats';

describe('pairedRatio', () => {
  it('takes the median of the round-by-round ratios, not the ratio of the medians', () => {
    // The second peer is 10 % slower in every round; the rounds themselves swing 2×.
    const off = [100, 200, 100, 200, 150];
    assert.deepEqual(pairedRatio(off, off.map((v) => v * 0.9)), { median: 0.9, low: 0.9, high: 0.9, rounds: 5 });
    // One round where only the second peer was hit: separate medians say 140/200 = 0.7, pairs 0.95.
    assert.equal(pairedRatio([100, 300, 200], [95, 140, 190])?.median, 0.95);
  });

  it('reports the spread and skips rounds that cannot be compared', () => {
    assert.deepEqual(pairedRatio([100, 100, 0, 100], [90, 110, 50, 95]), { median: 0.95, low: 0.9, high: 1.1, rounds: 3 });
    assert.equal(pairedRatio([], [1]), null);
    assert.equal(pairedRatio([0], [1]), null);
  });

  it('gives the table columns the paired median to 2 decimals, or nothing without the other peer', () => {
    assert.equal(pairedMedian([100, 300, 200], [95, 140, 190]), 0.95);
    assert.equal(pairedMedian([3, 3, 3], [2, 2, 2]), 0.67);
    assert.equal(pairedMedian(undefined, [1, 2]), null);
    assert.equal(pairedMedian([], [1]), null);
  });

  it('reads as median and range', () => {
    assert.equal(describePaired({ median: 0.929, low: 0.84, high: 1.01, rounds: 15 }), '0.929× (0.84–1.01 over 15 rounds)');
    assert.equal(describePaired(null), '–');
  });
});
