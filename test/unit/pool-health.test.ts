import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PanicMode } from '../../src/proxy/health/panic';
import { slowStartFactor } from '../../src/proxy/slow-start';
import { Pool } from '../../src/proxy/pool';
import { TRANSPORT, instance, onConnectionsClosed } from '../helpers/upstream-fixtures';

const request = { headers: {} };

/** Which ids `count` picks land on, in order. */
function picks(pool: Pool, count: number): string[] {
  return Array.from({ length: count }, () => pool.pick(request)?.id ?? '-');
}

describe('slow start factor', () => {
  const cases: Array<{ name: string; config: { window: number; aggression: number; minWeightPercent: number }; elapsed: number; expected: number }> = [
    { name: 'off (window 0)', config: { window: 0, aggression: 1, minWeightPercent: 10 }, elapsed: 0, expected: 1 },
    { name: 'linear, halfway', config: { window: 1000, aggression: 1, minWeightPercent: 10 }, elapsed: 500, expected: 0.5 },
    { name: 'linear, at the start: the minimum', config: { window: 1000, aggression: 1, minWeightPercent: 10 }, elapsed: 0, expected: 0.1 },
    { name: 'window over', config: { window: 1000, aggression: 1, minWeightPercent: 10 }, elapsed: 1000, expected: 1 },
    { name: 'aggression 2 ramps faster: sqrt(0.25)', config: { window: 1000, aggression: 2, minWeightPercent: 10 }, elapsed: 250, expected: 0.5 },
    { name: 'a higher minimum wins early', config: { window: 1000, aggression: 1, minWeightPercent: 40 }, elapsed: 100, expected: 0.4 },
  ];
  for (const c of cases) it(c.name, () => assert.equal(slowStartFactor(c.config, c.elapsed), c.expected));
});

describe('Pool: slow start', () => {
  function pool(now: { t: number }): Pool {
    return new Pool('s', { ...TRANSPORT, slowStart: { window: 1000, aggression: 1, minWeightPercent: 10 }, now: () => now.t });
  }

  it('instances present at the first update start at full weight', () => {
    const now = { t: 10_000 };
    const p = pool(now);
    p.update([instance('a'), instance('b')]);
    assert.deepEqual(p.upstreams.map((u) => u.weight), [1, 1]);
    p.destroy();
  });

  it('a new instance ramps from the minimum to its full weight over the window', () => {
    const now = { t: 10_000 };
    const p = pool(now);
    p.update([instance('a', 10)]);
    p.update([instance('a', 10), instance('b', 10)]);
    const b = () => p.upstreams[1];
    assert.equal(b().weight, 1);
    now.t += 500;
    p.pick(request);
    assert.equal(b().weight, 5);
    now.t += 500;
    p.pick(request);
    assert.equal(b().weight, 10);
    assert.equal(b().warmingSince, 0, 'done warming');
    p.destroy();
  });

  it('while warming, the newcomer gets a smaller share of round robin', () => {
    const now = { t: 10_000 };
    const p = pool(now);
    p.update([instance('a', 10)]);
    p.update([instance('a', 10), instance('b', 10)]);
    const early = picks(p, 22).filter((id) => id === 'b').length;
    assert.ok(early <= 3, `b got ${early} of 22 picks at 10% weight`);
    now.t += 2000;
    const late = picks(p, 20).filter((id) => id === 'b').length;
    assert.equal(late, 10);
    p.destroy();
  });

  it('an ejected instance that returns warms up again', () => {
    const now = { t: 10_000 };
    const p = pool(now);
    p.update([instance('a', 10), instance('b', 10)]);
    p.setEjected('b', true);
    assert.deepEqual(picks(p, 3), ['a', 'a', 'a']);
    p.setEjected('b', false);
    assert.equal(p.upstreams[1].weight, 1);
    now.t += 1000;
    p.pick(request);
    assert.equal(p.upstreams[1].weight, 10);
    p.destroy();
  });
});

describe('Pool: availability and panic', () => {
  function pool(threshold: number, ids = ['a', 'b', 'c', 'd']): Pool {
    const p = new Pool('panic-svc', { ...TRANSPORT, panic: new PanicMode('panic-svc', threshold) });
    p.update(ids.map((id) => instance(id)));
    return p;
  }

  it('ejected and probe-failing instances leave rotation; others take the traffic', () => {
    const p = pool(50);
    p.setEjected('a', true);
    p.setProbeHealthy('b', false);
    assert.deepEqual(new Set(picks(p, 6)), new Set(['c', 'd']));
    assert.equal(p.inPanic, false);
    p.setProbeHealthy('b', true);
    assert.ok(picks(p, 6).includes('b'));
    p.destroy();
  });

  it('below the threshold the pool panics and spreads over every instance', () => {
    const p = pool(50);
    p.setEjected('a', true);
    p.setEjected('b', true);
    assert.equal(p.inPanic, false, '2 of 4 healthy is not below 50%');
    p.setProbeHealthy('c', false);
    assert.equal(p.inPanic, true, '1 of 4 healthy is below 50%');
    assert.deepEqual(new Set(picks(p, 8)), new Set(['a', 'b', 'c', 'd']));
    p.setEjected('a', false);
    assert.equal(p.inPanic, false);
    assert.deepEqual(new Set(picks(p, 8)), new Set(['a', 'd']));
    p.destroy();
  });

  it('threshold 0 never panics: with everything ejected nothing is picked', () => {
    const p = pool(0, ['a', 'b']);
    p.setEjected('a', true);
    p.setEjected('b', true);
    assert.equal(p.inPanic, false);
    assert.equal(p.pick(request), undefined);
    p.destroy();
  });

  it('a retry avoids the excluded instance, and falls back to it when nothing else is left', () => {
    const p = pool(50, ['a', 'b']);
    const [a, b] = p.upstreams;
    for (let i = 0; i < 4; i++) assert.equal(p.pick(request, [a]), b);
    p.setEjected('b', true);
    assert.equal(p.inPanic, false, '1 of 2 is not below 50%');
    assert.equal(p.pick(request, [a]), a);
    p.destroy();
  });

  it('a deregistered instance drains: no new picks, but it is not cut while busy', () => {
    const p = pool(50, ['a', 'b']);
    const a = p.upstreams[0];
    let destroyed = 0;
    onConnectionsClosed(a, () => destroyed++);
    a.acquire();
    p.update([instance('b')]);
    assert.equal(a.draining, true);
    assert.deepEqual(picks(p, 3), ['b', 'b', 'b']);
    assert.equal(destroyed, 0);
    a.release();
    assert.equal(destroyed, 1);
    p.destroy();
  });
});
