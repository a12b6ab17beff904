import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatencyTracker } from '../../src/proxy/health/latency';
import { registry } from '../../src/metrics';
import { FakeClock } from '../helpers/fake-clock';
import { policySection } from '../helpers/policy';

function tracker(service: string, clock = new FakeClock()) {
  return { clock, latency: new LatencyTracker(service, policySection('retries').adaptiveTimeout, () => clock.now()) };
}

describe('LatencyTracker (the adaptive per-try timeout)', () => {
  it('uses the fallback until it has minSamples answers', () => {
    const { latency } = tracker('lt-fallback');
    for (let i = 0; i < 19; i++) latency.record(2);
    assert.equal(latency.timeoutMs(), 5_000);
    latency.record(2);
    assert.equal(latency.timeoutMs(), 250, 'then max(floor, 3 × p99): the floor for a 2 ms service');
  });

  it('is 3 × p99 once that is above the floor', () => {
    const { latency } = tracker('lt-slow');
    for (let i = 0; i < 100; i++) latency.record(i < 98 ? 100 : 300);
    const p99 = latency.quantileMs(0.99);
    assert.ok(p99 >= 300 && p99 < 360, `p99 bucket ${p99}`);
    assert.equal(latency.timeoutMs(), 3 * p99);
  });

  it('forgets: counts halve every decay period, so a new normal is learned', () => {
    const { latency, clock } = tracker('lt-decay');
    for (let i = 0; i < 100; i++) latency.record(400);
    assert.ok(latency.timeoutMs() >= 1200);
    clock.advance(70_000);
    for (let i = 0; i < 100; i++) latency.record(2);
    assert.equal(latency.timeoutMs(), 250, 'seven halvings leave the old 400 ms answers below 1 %');
  });

  it("reports each service's learned timeout in /metrics, and forgets a retired service", async () => {
    const { latency } = tracker('lt-metric');
    for (let i = 0; i < 20; i++) latency.record(2);
    const text = await registry.getSingleMetricAsString('switchboard_proxy_adaptive_timeout_seconds');
    assert.match(text, /switchboard_proxy_adaptive_timeout_seconds\{service="lt-metric"\} 0\.25/);
    latency.dispose();
    assert.doesNotMatch(await registry.getSingleMetricAsString('switchboard_proxy_adaptive_timeout_seconds'), /lt-metric/);
  });
});
