import { ConfigError, resolveConfig } from '../../src/config/load';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { registry } from '../../src/metrics';
import { ConcurrencyLimiter, writeOverloaded, type ConcurrencyLimitConfig } from '../../src/proxy/overload';
import { policySection } from '../helpers/policy';
import { FakeClock } from '../helpers/fake-clock';

async function rejections(service: string): Promise<number> {
  const metric = registry.getSingleMetric('switchboard_proxy_overload_rejections_total');
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.find((v) => v.labels.service === service)?.value ?? 0;
}

let services = 0;
function limiter(config: Partial<ConcurrencyLimitConfig>) {
  const clock = new FakeClock();
  const service = `overload-${services++}`;
  return { clock, service, limiter: new ConcurrencyLimiter({ service, config: policySection('limits', config), scheduler: clock }) };
}

describe('ConcurrencyLimiter', () => {
  test('defaults to 1024 concurrent (Envoy) and no queue', () => {
    const l = new ConcurrencyLimiter({ service: 'defaults', config: policySection('limits') });
    assert.deepEqual({ ...l.config }, { maxConcurrent: 1024, maxPending: 0, maxPendingWait: 1_000 });
  });

  test('below the limit acquire answers true synchronously; beyond it, false and counted', async () => {
    const { limiter: l, service } = limiter({ maxConcurrent: 2 });
    assert.equal(l.acquire(), true);
    assert.equal(l.acquire(), true);
    assert.equal(l.acquire(), false);
    assert.equal(await rejections(service), 1);
    l.release();
    assert.equal(l.active, 1);
    assert.equal(l.acquire(), true, 'a released slot is free again');
  });

  test('a waiter gets the next released slot, oldest first; a full queue rejects', async () => {
    const { limiter: l, service } = limiter({ maxConcurrent: 1, maxPending: 2 });
    assert.equal(l.acquire(), true);
    const first = l.acquire();
    const second = l.acquire();
    assert.ok(first instanceof Promise && second instanceof Promise);
    assert.equal(l.acquire(), false);
    assert.equal(l.pending, 2);
    const order: string[] = [];
    void first.then((granted) => order.push(`first:${granted}`));
    void second.then((granted) => order.push(`second:${granted}`));
    l.release();
    await first;
    assert.deepEqual(order, ['first:true']);
    assert.equal(l.active, 1, 'the slot changed hands');
    l.release();
    await second;
    assert.deepEqual(order, ['first:true', 'second:true']);
    assert.equal(await rejections(service), 1);
  });

  test('a waiter is turned away after maxPendingWaitMs and counted', async () => {
    const { limiter: l, service, clock } = limiter({ maxConcurrent: 1, maxPending: 1, maxPendingWait: 500 });
    l.acquire();
    const waiting = l.acquire() as Promise<boolean>;
    clock.advance(499);
    assert.equal(l.pending, 1);
    clock.advance(1);
    assert.equal(await waiting, false);
    assert.equal(l.pending, 0);
    assert.equal(await rejections(service), 1);
    l.release();
    assert.equal(l.active, 0);
    assert.equal(clock.pending, 0);
  });

  test('a waiter whose client leaves (signal) is dropped without counting an overload', async () => {
    const { limiter: l, service, clock } = limiter({ maxConcurrent: 1, maxPending: 1 });
    l.acquire();
    const controller = new AbortController();
    const waiting = l.acquire(controller.signal) as Promise<boolean>;
    controller.abort();
    assert.equal(await waiting, false);
    assert.equal(l.pending, 0);
    assert.equal(clock.pending, 0, 'its wait timer is cleared');
    assert.equal(await rejections(service), 0);
  });

  test('close() turns every waiter away and clears their timers', async () => {
    const { limiter: l, clock } = limiter({ maxConcurrent: 1, maxPending: 3 });
    l.acquire();
    const waiters = [l.acquire(), l.acquire()] as Promise<boolean>[];
    l.close();
    assert.deepEqual(await Promise.all(waiters), [false, false]);
    assert.equal(clock.pending, 0);
  });

  // The schema checks these (the limiter trusts its slice of the config).
  const invalid: { config: Record<string, unknown>; field: string }[] = [
    { config: { maxConcurrent: 0 }, field: 'maxConcurrent' },
    { config: { maxPending: -1 }, field: 'maxPending' },
    { config: { maxPending: 1.5 }, field: 'maxPending' },
    { config: { maxPendingWait: 0 }, field: 'maxPendingWait' },
  ];
  for (const c of invalid) {
    test(`an invalid ${c.field} is a configuration error naming the field`, () => {
      assert.throws(
        () => resolveConfig({ proxy: { defaults: { limits: c.config } } }),
        (err: unknown) => err instanceof ConfigError && err.field === `proxy.defaults.limits.${c.field}`,
      );
    });
  }
});

describe('writeOverloaded', () => {
  test('answers 503 JSON {error: overloaded} with Retry-After: 1', async () => {
    const server = http.createServer((_req, res) => writeOverloaded(res, 'service "users" is overloaded'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const response = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(response.status, 503);
      assert.equal(response.headers.get('retry-after'), '1');
      assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(await response.json(), { error: 'overloaded', message: 'service "users" is overloaded' });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
