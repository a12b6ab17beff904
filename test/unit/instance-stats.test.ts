import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InstanceStats } from '../../src/proxy/instance-stats';

describe('InstanceStats (per-instance traffic for the web UI)', () => {
  it('reports requests/s, error rate and bucketed p50/p99 for the window, then starts afresh', () => {
    const stats = new InstanceStats();
    for (let i = 0; i < 98; i++) stats.record(1.5, false);
    stats.record(450, true);
    stats.record(90_000, true);
    const window = stats.take(500);
    assert.deepEqual(window, { rps: 200, errorRate: 0.02, p50: 2, p99: 500 });
    assert.equal(stats.take(1000), undefined, 'an empty window says nothing');
  });

  it('puts answers slower than the last bound in the last bucket (reported at its lower bound)', () => {
    const stats = new InstanceStats();
    stats.record(120_000, false);
    assert.equal(stats.take(1000)?.p99, 60_000);
  });
});
