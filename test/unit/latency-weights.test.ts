import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InstanceLatency } from '../../src/proxy/health/instance-latency';
import { OutlierDetector } from '../../src/proxy/health/outlier-detector';
import { weightFactor } from '../../src/proxy/latency-weights';
import { Pool } from '../../src/proxy/pool';
import { FakeClock } from '../helpers/fake-clock';
import { policySection } from '../helpers/policy';
import { TRANSPORT, instance } from '../helpers/upstream-fixtures';

const request = { headers: {} };
const config = policySection('latencyAware');

describe('InstanceLatency: a time-weighted moving average', () => {
  it('starts at its first sample', () => {
    const l = new InstanceLatency();
    assert.equal(l.estimate, undefined);
    l.observe(7, 0, 1000);
    assert.equal(l.estimate, 7);
  });

  /** An estimate that has seen enough answers (2 ms each, 1 ms apart) to weigh by time. */
  function warm(): InstanceLatency {
    const l = new InstanceLatency();
    for (let t = 0; t < 2000; t++) l.observe(2, t, 1000);
    return l;
  }

  it('the first answers are averaged by count: one cold outlier is diluted', () => {
    const l = new InstanceLatency();
    l.observe(9, 0, 1000);
    for (let i = 1; i <= 8; i++) l.observe(1, i, 1000);
    assert.ok(Math.abs((l.estimate as number) - (9 + 8) / 9) < 1e-9, String(l.estimate));
  });

  it('once warm, moves 1 − e^(−Δt/decay) of the way to a new sample, whatever the request rate', () => {
    const l = warm();
    l.observe(40, 2999, 1000);
    assert.ok(Math.abs((l.estimate as number) - (2 + 38 * (1 - Math.exp(-1)))) < 1e-6, String(l.estimate));
    // A thousand samples over the same second move it about as far as one.
    const busy = warm();
    for (let t = 2000; t < 3000; t++) busy.observe(40, t, 1000);
    assert.ok(Math.abs((busy.estimate as number) - (l.estimate as number)) < 0.5, `${busy.estimate} vs ${l.estimate}`);
  });

  it('samples in the same clock tick still count a little', () => {
    const l = warm();
    l.observe(1002, 1999, 1000);
    assert.ok((l.estimate as number) > 2 && (l.estimate as number) < 3, String(l.estimate));
  });
});

describe('weightFactor: the share of its weight a slower instance keeps', () => {
  const cases: Array<{ name: string; estimate: number; median: number; expected: number }> = [
    { name: 'as fast as the median', estimate: 2, median: 2, expected: 1 },
    { name: 'within tolerance (1.5 × 2 + 2 ms)', estimate: 5, median: 2, expected: 1 },
    { name: 'differences of a millisecond or two are noise', estimate: 2.2, median: 0.2, expected: 1 },
    { name: '5× slower: (allowed / estimate)³', estimate: 10, median: 2, expected: (5 / 10) ** 3 },
    { name: '20× slower: at the minimum', estimate: 40, median: 2, expected: 0.005 },
    { name: 'a hang: never below the minimum', estimate: 5000, median: 2, expected: 0.005 },
  ];
  for (const c of cases) it(c.name, () => assert.equal(weightFactor(c.estimate, c.median, config), c.expected));
});

describe('Pool: latency-aware weights', () => {
  function pool(clock: FakeClock, overrides: Partial<typeof config> = {}, slow?: { factor: number; onSlow: (id: string) => void }) {
    const p = new Pool('lat', {
      ...TRANSPORT,
      latencyAware: { ...config, ...overrides },
      slowFactor: slow?.factor,
      onSlow: slow?.onSlow,
      now: () => clock.now(),
    });
    p.update([instance('a', 10), instance('b', 10), instance('c', 10)]);
    return p;
  }

  /** Every upstream answers once per `stepMs` for `ms`, `c` taking `slowMs`. */
  function traffic(p: Pool, clock: FakeClock, ms: number, slowMs: number, stepMs = 10): void {
    for (let t = 0; t < ms; t += stepMs) {
      clock.advance(stepMs);
      for (const u of p.upstreams) p.observeLatency(u, u.id === 'c' ? slowMs : 2);
    }
  }

  function share(p: Pool, id: string, picks = 1000): number {
    let hits = 0;
    for (let i = 0; i < picks; i++) if (p.pick(request)?.id === id) hits++;
    return hits / picks;
  }

  it('an instance 20× slower than its peers gets about 0.25 % of round robin within a few seconds', () => {
    const clock = new FakeClock();
    const p = pool(clock);
    traffic(p, clock, 2000, 2);
    assert.ok(Math.abs(share(p, 'c') - 1 / 3) < 0.01, 'all equal while all are fast');
    traffic(p, clock, 3000, 40);
    clock.advance(200);
    const slowShare = share(p, 'c');
    assert.ok(slowShare > 0 && slowShare <= 0.005, `slow share ${slowShare}`);
    assert.equal(p.upstreams[0].weight, 10, 'Consul weight stays the upper bound of the fast ones');
    p.destroy();
  });

  it('it regains its share once it is fast again', () => {
    const clock = new FakeClock();
    const p = pool(clock);
    traffic(p, clock, 3000, 40);
    traffic(p, clock, 5000, 2);
    clock.advance(200);
    assert.ok(Math.abs(share(p, 'c') - 1 / 3) < 0.01);
    p.destroy();
  });

  it('when every instance slows down together, nobody loses its share', () => {
    const clock = new FakeClock();
    const p = pool(clock);
    for (let t = 0; t < 3000; t += 10) {
      clock.advance(10);
      for (const u of p.upstreams) p.observeLatency(u, 40 + (u.id === 'c' ? 5 : 0));
    }
    clock.advance(200);
    assert.deepEqual(p.upstreams.map((u) => u.weight), [10, 10, 10]);
    p.destroy();
  });

  it('off: weights ignore latency', () => {
    const clock = new FakeClock();
    const p = pool(clock, { enabled: false });
    traffic(p, clock, 3000, 40);
    clock.advance(200);
    p.pick(request);
    assert.deepEqual(p.upstreams.map((u) => u.weight), [10, 10, 10]);
    p.destroy();
  });

  it('the latency outlier rule names an instance slowFactor × slower than the median', () => {
    const clock = new FakeClock();
    const slow: string[] = [];
    const p = pool(clock, {}, { factor: 10, onSlow: (id) => slow.push(id) });
    traffic(p, clock, 3000, 15);
    clock.advance(200);
    p.pick(request);
    assert.deepEqual(slow, [], '7.5× slower is not 10×');
    traffic(p, clock, 3000, 40);
    clock.advance(200);
    p.pick(request);
    assert.deepEqual(slow, ['c']);
    p.destroy();
  });

  it('a returning instance is judged on fresh answers', () => {
    const clock = new FakeClock();
    const p = pool(clock);
    traffic(p, clock, 3000, 40);
    clock.advance(200);
    p.pick(request);
    const c = p.upstreams[2];
    assert.ok(c.weight < 0.5, `weight ${c.weight}`);
    p.setEjected('c', true);
    p.setEjected('c', false);
    assert.equal(c.weight, 10);
    assert.equal(c.latency.estimate, undefined);
    p.destroy();
  });
});

describe('OutlierDetector: latency ejections', () => {
  it('ejects a slow host with reason latency, within maxEjectionPercent', () => {
    const clock = new FakeClock();
    const changes: string[] = [];
    const detector = new OutlierDetector({
      service: 'slow-eject',
      config: { ...policySection('outlierDetection'), maxEjectionPercent: 10 },
      onChange: (id, ejected) => changes.push(`${id}:${ejected}`),
      scheduler: clock,
    });
    detector.setHosts(['a', 'b', 'c']);
    detector.slow('c');
    detector.slow('b');
    assert.deepEqual(changes, ['c:true'], 'the second is over the cap');
    clock.advance(30_000);
    assert.deepEqual(changes, ['c:true', 'c:false']);
    detector.stop();
  });
});
