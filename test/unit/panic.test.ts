import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { registry } from '../../src/metrics';
import { inPanic, PanicMode } from '../../src/proxy/health/panic';

describe('inPanic', () => {
  const cases: { total: number; healthy: number; threshold?: number; panic: boolean }[] = [
    { total: 10, healthy: 10, panic: false },
    { total: 10, healthy: 5, panic: false },
    { total: 10, healthy: 4, panic: true },
    { total: 3, healthy: 1, panic: true },
    { total: 3, healthy: 2, panic: false },
    { total: 2, healthy: 1, panic: false },
    { total: 1, healthy: 0, panic: true },
    { total: 0, healthy: 0, panic: false },
    { total: 10, healthy: 7, threshold: 80, panic: true },
    { total: 10, healthy: 0, threshold: 0, panic: false },
  ];
  for (const c of cases) {
    test(`${c.healthy}/${c.total} healthy at threshold ${c.threshold ?? 50}%: ${c.panic ? 'panic' : 'normal'}`, () => {
      assert.equal(inPanic(c.total, c.healthy, c.threshold), c.panic);
    });
  }
});

describe('PanicMode', () => {
  test('sets the gauge while in panic and counts entries, not evaluations', async () => {
    const mode = new PanicMode('panic-svc');
    assert.equal(mode.update(4, 4), false);
    assert.equal(mode.update(4, 1), true);
    assert.equal(mode.update(4, 0), true);
    assert.equal(mode.inPanic, true);
    let gauge = await registry.getSingleMetricAsString('switchboard_proxy_panic_mode');
    assert.match(gauge, /service="panic-svc"} 1/);
    assert.equal(mode.update(4, 3), false);
    assert.equal(mode.update(4, 1), true);
    const entries = await registry.getSingleMetricAsString('switchboard_proxy_panic_entries_total');
    assert.match(entries, /service="panic-svc"} 2/);
    mode.update(4, 4);
    gauge = await registry.getSingleMetricAsString('switchboard_proxy_panic_mode');
    assert.match(gauge, /service="panic-svc"} 0/);
    mode.dispose();
    gauge = await registry.getSingleMetricAsString('switchboard_proxy_panic_mode');
    assert.doesNotMatch(gauge, /panic-svc/);
  });
});
