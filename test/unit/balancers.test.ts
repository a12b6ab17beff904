import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BALANCER_POLICIES } from '../../src/config/types';
import { isSwitchboardError } from '../../src/errors';
import { balancerPolicies, createBalancer, type PickRequest } from '../../src/proxy/balancers/balancer';
import { cookieValue, murmur3, parseHashKey, requestKey } from '../../src/proxy/balancers/hash-key';
import { LeastRequest } from '../../src/proxy/balancers/least-request';
import { RandomBalancer } from '../../src/proxy/balancers/random';
import { RingHash } from '../../src/proxy/balancers/ring-hash';
import { Upstream } from '../../src/proxy/upstream';
import { TRANSPORT, instance } from '../helpers/upstream-fixtures';

function upstreams(spec: Record<string, { weight?: number; inFlight?: number; down?: boolean }>): Upstream[] {
  return Object.entries(spec).map(([id, s]) => {
    const u = new Upstream(instance(id, s.weight ?? 1), TRANSPORT);
    u.inFlight = s.inFlight ?? 0;
    if (s.down) u.setEjected(true);
    return u;
  });
}

/** A random source that replays `draws` in order. */
function draws(...values: number[]): () => number {
  let i = 0;
  return () => {
    assert.ok(i < values.length, 'the balancer drew more random numbers than the case expects');
    return values[i++];
  };
}

const noKey: PickRequest = { headers: {} };

describe('least-request (power of two choices)', () => {
  const cases: Array<{ name: string; spec: Parameters<typeof upstreams>[0]; random: number[]; expected: string | undefined }> = [
    { name: 'the less busy of the two sampled wins', spec: { a: { inFlight: 5 }, b: { inFlight: 1 }, c: { inFlight: 0 } }, random: [0, 0], expected: 'b' },
    { name: 'samples are distinct: second draw skips the first', spec: { a: { inFlight: 3 }, b: { inFlight: 9 }, c: { inFlight: 2 } }, random: [0.5, 0.5], expected: 'c' },
    { name: 'a tie goes to the first sampled', spec: { a: { inFlight: 2 }, b: { inFlight: 2 } }, random: [0.9, 0], expected: 'b' },
    { name: 'weight divides the load: 4 in flight at weight 4 beats 2 at weight 1', spec: { a: { inFlight: 2 }, b: { inFlight: 4, weight: 4 } }, random: [0, 0], expected: 'b' },
    { name: 'the busiest is never picked among three (it loses every pairing)', spec: { a: { inFlight: 9 }, b: { inFlight: 0 }, c: { inFlight: 0 } }, random: [0, 0.99], expected: 'c' },
    { name: 'unavailable upstreams are not sampled', spec: { a: { down: true }, b: { inFlight: 7 }, c: { inFlight: 8 } }, random: [0, 0], expected: 'b' },
    { name: 'a single available upstream needs no draw', spec: { a: { down: true }, b: { inFlight: 50 } }, random: [], expected: 'b' },
    { name: 'nothing available', spec: { a: { down: true } }, random: [], expected: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const us = upstreams(c.spec);
      assert.equal(new LeastRequest(draws(...c.random)).pick(us, noKey)?.id, c.expected);
    });
  }

  it('honours exclusions (retries go elsewhere)', () => {
    const us = upstreams({ a: { inFlight: 0 }, b: { inFlight: 5 }, c: { inFlight: 6 } });
    assert.equal(new LeastRequest(draws(0, 0)).pick(us, noKey, [us[0]])?.id, 'b');
    assert.equal(new LeastRequest(draws()).pick(us, noKey, us), undefined);
  });

  it('spreads load: over many picks with equal load every upstream gets a share', () => {
    const us = upstreams({ a: {}, b: {}, c: {} });
    const balancer = new LeastRequest();
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const u = balancer.pick(us, noKey) as Upstream;
      counts.set(u.id, (counts.get(u.id) ?? 0) + 1);
    }
    for (const id of ['a', 'b', 'c']) assert.ok((counts.get(id) ?? 0) > 600, `${id} got ${counts.get(id)}`);
  });
});

describe('random (weighted)', () => {
  const cases: Array<{ name: string; spec: Parameters<typeof upstreams>[0]; draw: number; expected: string | undefined }> = [
    { name: 'draw 0 takes the first', spec: { a: {}, b: {} }, draw: 0, expected: 'a' },
    { name: 'draw in the second half takes the second', spec: { a: {}, b: {} }, draw: 0.5, expected: 'b' },
    { name: 'weights stretch the ranges: {3,1} at 0.7', spec: { a: { weight: 3 }, b: {} }, draw: 0.7, expected: 'a' },
    { name: 'weights stretch the ranges: {3,1} at 0.8', spec: { a: { weight: 3 }, b: {} }, draw: 0.8, expected: 'b' },
    { name: 'unavailable upstreams have no range', spec: { a: { down: true }, b: {}, c: {} }, draw: 0.1, expected: 'b' },
    { name: 'nothing available', spec: { a: { down: true } }, draw: 0.3, expected: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(new RandomBalancer(() => c.draw).pick(upstreams(c.spec), noKey)?.id, c.expected));
  }

  it('honours exclusions', () => {
    const us = upstreams({ a: {}, b: {} });
    assert.equal(new RandomBalancer(() => 0).pick(us, noKey, [us[0]])?.id, 'b');
  });
});

describe('ring hash (consistent hashing)', () => {
  const keyed = (key: string): PickRequest => ({ headers: { 'x-user': key } });
  const ring = (us: Upstream[]): RingHash => {
    const balancer = new RingHash('header:x-user');
    balancer.update(us);
    return balancer;
  };
  const assign = (balancer: RingHash, us: Upstream[], keys: string[]): Map<string, string> =>
    new Map(keys.map((k) => [k, (balancer.pick(us, keyed(k)) as Upstream).id]));
  const KEYS = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

  it('a key keeps its instance, pick after pick and across ring rebuilds', () => {
    const us = upstreams({ a: {}, b: {}, c: {}, d: {} });
    const first = assign(ring(us), us, KEYS.slice(0, 500));
    const again = assign(ring(us), us, KEYS.slice(0, 500));
    assert.deepEqual(again, first);
  });

  for (const n of [3, 5, 10]) {
    it(`removing one of ${n} instances remaps only its own keys (≈1/${n})`, () => {
      const spec = Object.fromEntries(Array.from({ length: n }, (_, i) => [`i${i}`, {}]));
      const all = upstreams(spec);
      const before = assign(ring(all), all, KEYS);
      const removed = all[1].id;
      const rest = all.filter((u) => u.id !== removed);
      const after = assign(ring(rest), rest, KEYS);
      let moved = 0;
      for (const key of KEYS) {
        if (before.get(key) === after.get(key)) continue;
        moved++;
        assert.equal(before.get(key), removed, `${key} moved although its instance stayed`);
      }
      // Expected K/N; the band allows the ring's own imbalance (±35 % of a share with 160
      // points per instance) plus 4 standard deviations of sampling K keys.
      const expected = KEYS.length / n;
      const sampling = 4 * Math.sqrt(KEYS.length * (1 / n) * (1 - 1 / n));
      const tolerance = 0.35 * expected + sampling;
      assert.ok(Math.abs(moved - expected) <= tolerance, `moved ${moved}, expected ${expected} ± ${tolerance.toFixed(0)}`);
    });
  }

  it('adding an instance takes keys only for itself', () => {
    const four = upstreams({ a: {}, b: {}, c: {}, d: {} });
    const before = assign(ring(four), four, KEYS);
    const five = [...four, ...upstreams({ e: {} })];
    const after = assign(ring(five), five, KEYS);
    for (const key of KEYS) if (before.get(key) !== after.get(key)) assert.equal(after.get(key), 'e');
  });

  it('an unavailable instance is skipped, and gets its keys back when it returns', () => {
    const us = upstreams({ a: {}, b: {}, c: {} });
    const balancer = ring(us);
    const before = assign(balancer, us, KEYS.slice(0, 2000));
    us[0].setEjected(true);
    const during = assign(balancer, us, KEYS.slice(0, 2000));
    for (const [key, id] of during) {
      assert.notEqual(id, 'a');
      if (before.get(key) !== 'a') assert.equal(id, before.get(key), `${key} moved although its instance stayed`);
    }
    us[0].setEjected(false);
    assert.deepEqual(assign(balancer, us, KEYS.slice(0, 2000)), before);
  });

  it('weights give proportional shares of the keys', () => {
    const us = upstreams({ heavy: { weight: 3 }, light: {} });
    const counts = { heavy: 0, light: 0 };
    for (const id of assign(ring(us), us, KEYS).values()) counts[id as 'heavy' | 'light']++;
    const share = counts.heavy / KEYS.length;
    assert.ok(share > 0.65 && share < 0.85, `heavy got ${share}`);
  });

  it('a retry excludes the key owner and takes the next instance clockwise', () => {
    const us = upstreams({ a: {}, b: {}, c: {} });
    const balancer = ring(us);
    const owner = balancer.pick(us, keyed('k')) as Upstream;
    const next = balancer.pick(us, keyed('k'), [owner]) as Upstream;
    assert.notEqual(next, owner);
    assert.equal(balancer.pick(us, keyed('k'), us), undefined);
  });

  it('a request without the key goes to some available instance', () => {
    const us = upstreams({ a: { down: true }, b: {} });
    assert.equal(ring(us).pick(us, noKey)?.id, 'b');
  });
});

describe('hash keys', () => {
  const request: PickRequest = {
    headers: { 'x-user': ['first', 'second'], cookie: 'theme=dark; session=abc123 ;other=1', host: 'h' },
    socket: { remoteAddress: '10.1.2.3' },
  };
  const cases: Array<{ key: string; expected: string | undefined }> = [
    { key: 'ip', expected: '10.1.2.3' },
    { key: 'header:X-User', expected: 'first' },
    { key: 'header:host', expected: 'h' },
    { key: 'header:missing', expected: undefined },
    { key: 'cookie:session', expected: 'abc123' },
    { key: 'cookie:theme', expected: 'dark' },
    { key: 'cookie:other', expected: '1' },
    { key: 'cookie:sess', expected: undefined },
  ];
  for (const c of cases) {
    it(`${c.key} → ${String(c.expected)}`, () => assert.equal(requestKey(parseHashKey(c.key), request), c.expected));
  }

  it('cookie names must match whole names, not suffixes', () => {
    assert.equal(cookieValue('xsession=1; session=2', 'session'), '2');
    assert.equal(cookieValue('a=session=3', 'session'), undefined);
  });

  it('rejects a malformed key', () => {
    for (const bad of ['', 'header:', 'query:x', 'IP']) {
      assert.throws(() => parseHashKey(bad), (err) => isSwitchboardError(err, 'config_invalid'), bad);
    }
  });

  it('murmur3 hashes the empty string to 0 and spreads sequential keys evenly', () => {
    assert.equal(murmur3(''), 0);
    assert.notEqual(murmur3('user-1'), murmur3('user-2'));
    const buckets = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) buckets[murmur3(`k${i}`) >>> 28]++;
    for (const b of buckets) assert.ok(b > 800 && b < 1200, `bucket count ${b}`);
  });
});

describe('createBalancer', () => {
  it('knows exactly the policies the config schema accepts', () => {
    assert.deepEqual([...balancerPolicies()].sort(), [...BALANCER_POLICIES].sort());
    for (const policy of BALANCER_POLICIES) assert.equal(createBalancer(policy).policy, policy);
  });

  it('passes the hash key to ring-hash and rejects a bad one at construction', () => {
    assert.throws(() => createBalancer('ring-hash', { hashKey: 'nonsense' }), (err) => isSwitchboardError(err, 'config_invalid'));
  });
});
