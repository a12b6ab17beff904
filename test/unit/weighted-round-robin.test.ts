import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_WEIGHTS, type HealthStatus, type Instance, type Weights } from '../../src/catalog/model';
import { isSwitchboardError } from '../../src/errors';
import { createBalancer } from '../../src/proxy/balancers/balancer';
import { WeightedRoundRobin } from '../../src/proxy/balancers/weighted-round-robin';
import { Pool } from '../../src/proxy/pool';
import { Upstream } from '../../src/proxy/upstream';
import { TRANSPORT, instance as fixtureInstance, onConnectionsClosed } from '../helpers/upstream-fixtures';

const request = { headers: {} };

/** Every instance here carries one TTL check, passing unless said. */
function instance(id: string, weights: Weights = DEFAULT_WEIGHTS, status: HealthStatus = 'passing'): Instance {
  return fixtureInstance(id, weights, status);
}

function upstreams(weights: Record<string, number>): Upstream[] {
  return Object.entries(weights).map(([id, w]) => new Upstream(instance(id, { passing: w, warning: w }), TRANSPORT));
}

function picks(weights: Record<string, number>, count: number, prepare?: (us: Upstream[]) => void): string {
  const us = upstreams(weights);
  prepare?.(us);
  const balancer = new WeightedRoundRobin();
  balancer.update(us);
  const order: string[] = [];
  for (let i = 0; i < count; i++) order.push(balancer.pick(us, request)?.id ?? '-');
  us.forEach((u) => u.destroy());
  return order.join(' ');
}

describe('smooth weighted round robin', () => {
  const cases: Array<{ name: string; weights: Record<string, number>; expected: string }> = [
    { name: "nginx's example {5,1,1}", weights: { a: 5, b: 1, c: 1 }, expected: 'a a b a c a a' },
    { name: 'equal weights rotate', weights: { a: 1, b: 1, c: 1 }, expected: 'a b c a b c' },
    { name: 'a single upstream', weights: { a: 3 }, expected: 'a a a' },
    { name: '{2,1} interleaves', weights: { a: 2, b: 1 }, expected: 'a b a a b a' },
    { name: '{1,3} starts with the heavy one, ties go to the first', weights: { a: 1, b: 3 }, expected: 'b a b b b a b b' },
    { name: 'zero weight never picked', weights: { a: 0, b: 1 }, expected: 'b b b' },
    { name: 'all zero: nothing to pick', weights: { a: 0, b: 0 }, expected: '- -' },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(picks(c.weights, c.expected.split(' ').length), c.expected));
  }

  it('skips upstreams that are not available', () => {
    assert.equal(picks({ a: 5, b: 1, c: 1 }, 4, (us) => us[0].drain()), 'b c b c');
  });

  it('keeps the turn of remaining upstreams when the membership changes', () => {
    const [a, b, c] = upstreams({ a: 1, b: 1, c: 1 });
    const balancer = new WeightedRoundRobin();
    balancer.update([a, b, c]);
    assert.equal(balancer.pick([a, b, c], request), a);
    const next = [b, c];
    balancer.update(next);
    assert.deepEqual([balancer.pick(next, request), balancer.pick(next, request)], [b, c]);
    [a, b, c].forEach((u) => u.destroy());
  });
});

describe('createBalancer', () => {
  it('makes the default policy', () => {
    assert.equal(createBalancer().policy, 'weighted-round-robin');
  });

  it('rejects an unknown policy with a clear error', () => {
    assert.throws(
      () => createBalancer('fastest'),
      (err) => isSwitchboardError(err, 'config_invalid') && /unknown balancer policy "fastest"/.test(err.message),
    );
  });

  it('does not mistake object keys for policies', () => {
    assert.throws(() => createBalancer('constructor'), (err) => isSwitchboardError(err, 'config_invalid'));
  });
});

describe('Pool', () => {
  it('keeps only instances with weight in rotation, by Consul weights per health', () => {
    const pool = new Pool('s', TRANSPORT);
    pool.update([
      instance('pass', { passing: 3, warning: 1 }),
      instance('warn', { passing: 3, warning: 2 }, 'warning'),
      instance('down', DEFAULT_WEIGHTS, 'critical'),
    ]);
    assert.deepEqual(
      pool.upstreams.map((u) => [u.id, u.weight]),
      [
        ['pass', 3],
        ['warn', 2],
      ],
    );
    assert.equal(pool.exists, true);
    pool.destroy();
  });

  it('drains an instance that turns critical, and exists with nothing to pick', () => {
    const pool = new Pool('s', TRANSPORT);
    pool.update([instance('a')]);
    const a = pool.pick(request);
    assert.ok(a);
    a.acquire();
    pool.update([instance('a', DEFAULT_WEIGHTS, 'critical')]);
    assert.equal(pool.pick(request), undefined);
    assert.equal(pool.exists, true);
    assert.equal(a.draining, true);
    a.release();
    pool.destroy();
  });

  it("closes a leaving upstream's connections only after its last in-flight request", () => {
    const pool = new Pool('s', TRANSPORT);
    pool.update([instance('a')]);
    const a = pool.upstreams[0];
    let destroyed = 0;
    onConnectionsClosed(a, () => destroyed++);
    a.acquire();
    a.acquire();
    pool.update([]);
    assert.equal(destroyed, 0, 'in-flight requests keep their connections');
    a.release();
    assert.equal(destroyed, 0);
    a.release();
    assert.equal(destroyed, 1);
    assert.equal(pool.exists, false);
  });

  it('reuses the upstream (and its connections) when only the weight changes', () => {
    const pool = new Pool('s', TRANSPORT);
    pool.update([instance('a')]);
    const before = pool.upstreams[0];
    pool.update([instance('a', { passing: 4, warning: 1 })]);
    assert.equal(pool.upstreams[0], before);
    assert.equal(before.weight, 4);
    pool.destroy();
  });

  it('replaces the upstream when the address changes', () => {
    const pool = new Pool('s', TRANSPORT);
    pool.update([instance('a')]);
    const before = pool.upstreams[0];
    pool.update([{ ...instance('a'), port: 2 }]);
    assert.notEqual(pool.upstreams[0], before);
    assert.equal(before.draining, true);
    pool.destroy();
  });
});
