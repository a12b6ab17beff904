import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { registry } from '../../src/metrics';
import {
  classifyOutcome,
  OutlierDetector,
  type OutlierConfig,
  type RequestOutcome,
} from '../../src/proxy/health/outlier-detector';
import { FakeClock } from '../helpers/fake-clock';
import { policySection } from '../helpers/policy';
import { ConfigError, resolveConfig } from '../../src/config/load';

const SECOND = 1_000;

function detector(hosts: string[], config: Partial<OutlierConfig> = {}, service = 'users') {
  const clock = new FakeClock();
  const events: string[] = [];
  const od = new OutlierDetector({
    service,
    config: policySection('outlierDetection', config),
    scheduler: clock,
    onChange: (id, ejected) => events.push(`${id}:${ejected ? 'out' : 'in'}`),
  });
  od.setHosts(hosts);
  const record = (id: string, ...outcomes: RequestOutcome[]): void => outcomes.forEach((o) => od.record(id, o));
  return { clock, events, od, record };
}

const fiveXx = (n: number): RequestOutcome[] => Array<RequestOutcome>(n).fill('http_5xx');
const gateway = (n: number): RequestOutcome[] => Array<RequestOutcome>(n).fill('gateway_failure');

describe('OutlierDetector: when a host is ejected', () => {
  const cases: { name: string; outcomes: RequestOutcome[]; ejected: boolean }[] = [
    { name: '4 consecutive 5xx are tolerated', outcomes: fiveXx(4), ejected: false },
    { name: '5 consecutive 5xx eject (Envoy default)', outcomes: fiveXx(5), ejected: true },
    { name: 'a success resets the 5xx run', outcomes: [...fiveXx(4), 'success', ...fiveXx(4)], ejected: false },
    { name: '2 gateway failures are tolerated', outcomes: gateway(2), ejected: false },
    { name: '3 consecutive gateway failures eject (faster than Envoy)', outcomes: gateway(3), ejected: true },
    { name: 'a plain 5xx breaks a gateway run', outcomes: ['gateway_failure', 'gateway_failure', 'http_5xx', 'gateway_failure'], ejected: false },
    { name: 'gateway failures also count as 5xx', outcomes: ['gateway_failure', 'gateway_failure', 'http_5xx', 'gateway_failure', 'gateway_failure'], ejected: true },
    { name: 'a success resets the gateway run', outcomes: ['gateway_failure', 'gateway_failure', 'success', 'gateway_failure'], ejected: false },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const h = detector(['a', 'b', 'c']);
      h.record('a', ...c.outcomes);
      assert.equal(h.od.isEjected('a'), c.ejected);
      assert.deepEqual(h.events, c.ejected ? ['a:out'] : []);
      h.od.stop();
    });
  }

  test('a threshold of 0 disables that detector', () => {
    const h = detector(['a', 'b'], { consecutiveGatewayFailure: 0, consecutive5xx: 0 });
    h.record('a', ...gateway(50));
    assert.equal(h.od.isEjected('a'), false);
  });

  test('ejections are counted by reason', async () => {
    const h = detector(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'], { maxEjectionPercent: 100 }, 'metrics-svc');
    h.record('a', ...gateway(3));
    h.record('b', ...fiveXx(5));
    const text = await registry.getSingleMetricAsString('switchboard_proxy_ejections_total');
    assert.match(text, /reason="consecutive_gateway_failure",service="metrics-svc"} 1|service="metrics-svc",reason="consecutive_gateway_failure"} 1/);
    assert.match(text, /reason="consecutive_5xx",service="metrics-svc"} 1|service="metrics-svc",reason="consecutive_5xx"} 1/);
    h.od.stop();
  });
});

describe('OutlierDetector: ejection time and return', () => {
  test('an ejected host returns by itself after baseEjectionTime', () => {
    const h = detector(['a', 'b'], { baseEjectionTime: 30 * SECOND });
    h.record('a', ...gateway(3));
    h.clock.advance(30 * SECOND - 1);
    assert.equal(h.od.isEjected('a'), true);
    h.clock.advance(1);
    assert.equal(h.od.isEjected('a'), false);
    assert.deepEqual(h.events, ['a:out', 'a:in']);
    assert.equal(h.clock.pending, 0);
  });

  test('repeat ejections last base × times ejected, capped at maxEjectionTime', () => {
    const h = detector(['a', 'b'], { baseEjectionTime: 30 * SECOND, maxEjectionTime: 70 * SECOND });
    const durations: number[] = [];
    for (let i = 0; i < 4; i++) {
      h.record('a', ...gateway(3));
      const start = h.clock.now();
      while (h.od.isEjected('a')) h.clock.advance(SECOND);
      durations.push((h.clock.now() - start) / SECOND);
    }
    assert.deepEqual(durations, [30, 60, 70, 70]);
  });

  test('the repeat count decays by one per decayInterval spent back in rotation', () => {
    const h = detector(['a', 'b'], { baseEjectionTime: 10 * SECOND, maxEjectionTime: 300 * SECOND, decayInterval: 5 * SECOND });
    const ejectAndTime = (): number => {
      h.record('a', ...gateway(3));
      const start = h.clock.now();
      while (h.od.isEjected('a')) h.clock.advance(SECOND);
      return (h.clock.now() - start) / SECOND;
    };
    assert.equal(ejectAndTime(), 10);
    assert.equal(ejectAndTime(), 20);
    assert.equal(ejectAndTime(), 30);
    h.clock.advance(10 * SECOND); // two decay periods: 3 → 1
    assert.equal(ejectAndTime(), 20);
    h.clock.advance(60 * SECOND); // fully decayed
    assert.equal(ejectAndTime(), 10);
  });

  test('outcomes of requests that finish while the host is ejected are ignored', () => {
    const h = detector(['a', 'b'], { baseEjectionTime: 10 * SECOND });
    h.record('a', ...gateway(3));
    h.record('a', ...gateway(2));
    h.clock.advance(10 * SECOND);
    h.record('a', 'gateway_failure');
    assert.equal(h.od.isEjected('a'), false, 'the run starts again after return');
    h.record('a', ...gateway(2));
    assert.equal(h.od.isEjected('a'), true);
  });
});

describe('OutlierDetector: ejection cap', () => {
  const capCases: { hosts: number; percent: number; maxEjected: number }[] = [
    { hosts: 10, percent: 10, maxEjected: 1 },
    { hosts: 20, percent: 10, maxEjected: 2 },
    { hosts: 3, percent: 10, maxEjected: 1 },
    { hosts: 1, percent: 10, maxEjected: 1 },
    { hosts: 4, percent: 50, maxEjected: 2 },
    { hosts: 4, percent: 0, maxEjected: 1 },
    { hosts: 4, percent: 100, maxEjected: 4 },
  ];
  for (const c of capCases) {
    test(`${c.hosts} hosts at ${c.percent}%: at most ${c.maxEjected} ejected at once`, () => {
      const ids = Array.from({ length: c.hosts }, (_, i) => `h${i}`);
      const h = detector(ids, { maxEjectionPercent: c.percent });
      for (const id of ids) h.record(id, ...gateway(3));
      assert.equal(h.od.ejectedCount, c.maxEjected);
      assert.equal(ids.filter((id) => h.od.isEjected(id)).length, c.maxEjected);
      h.od.stop();
    });
  }

  test('a host held back by the cap is ejected at its next failure once room frees', () => {
    const ids = Array.from({ length: 10 }, (_, i) => `h${i}`);
    const h = detector(ids, { baseEjectionTime: 10 * SECOND });
    h.record('h0', ...gateway(3));
    h.record('h1', ...gateway(3));
    assert.deepEqual(h.events, ['h0:out']);
    h.clock.advance(10 * SECOND);
    h.record('h1', 'gateway_failure');
    assert.deepEqual(h.events, ['h0:out', 'h0:in', 'h1:out']);
    h.od.stop();
  });

  test('the cap follows the current host count (setHosts)', () => {
    const h = detector(['a', 'b', 'c', 'd'], { maxEjectionPercent: 50 });
    h.record('a', ...gateway(3));
    h.od.setHosts(['a', 'b']);
    h.record('b', ...gateway(3));
    assert.equal(h.od.isEjected('b'), false, '1 of 2 ejected is already 50%');
    h.od.setHosts(['a', 'b', 'c', 'd', 'e', 'f']);
    h.record('b', 'gateway_failure');
    assert.equal(h.od.isEjected('b'), true);
    h.od.stop();
  });

  test('a removed host is forgotten: its timer is cleared, no edge, and it frees the cap', () => {
    const h = detector(['a', 'b', 'c'], { maxEjectionPercent: 10 });
    h.record('a', ...gateway(3));
    assert.equal(h.clock.pending, 1);
    h.od.setHosts(['b', 'c']);
    assert.equal(h.clock.pending, 0);
    assert.equal(h.od.isEjected('a'), false);
    assert.deepEqual(h.events, ['a:out']);
    h.record('b', ...gateway(3));
    assert.equal(h.od.isEjected('b'), true);
    h.record('zzz', ...gateway(10));
    assert.equal(h.od.isEjected('zzz'), false, 'unknown hosts are ignored');
    h.od.stop();
    assert.equal(h.clock.pending, 0, 'stop() clears every return timer');
  });
});

describe('OutlierDetector: configuration and classification', () => {
  // The schema is where these are checked (the detector trusts its slice of the config).
  const invalid: { config: Record<string, unknown>; field: string }[] = [
    { config: { consecutive5xx: -1 }, field: 'consecutive5xx' },
    { config: { baseEjectionTime: 0 }, field: 'baseEjectionTime' },
    { config: { maxEjectionPercent: 101 }, field: 'maxEjectionPercent' },
    { config: { baseEjectionTime: '10s', maxEjectionTime: '5s' }, field: 'maxEjectionTime' },
  ];
  for (const c of invalid) {
    test(`an invalid ${c.field} is a configuration error naming the field`, () => {
      assert.throws(
        () => resolveConfig({ proxy: { defaults: { outlierDetection: c.config } } }),
        (err: unknown) => err instanceof ConfigError && err.field === `proxy.defaults.outlierDetection.${c.field}`,
      );
    });
  }

  const outcomes: { input: { status?: number; error?: string }; outcome: RequestOutcome }[] = [
    { input: { status: 200 }, outcome: 'success' },
    { input: { status: 404 }, outcome: 'success' },
    { input: { status: 500 }, outcome: 'http_5xx' },
    { input: { status: 501 }, outcome: 'http_5xx' },
    { input: { status: 502 }, outcome: 'gateway_failure' },
    { input: { status: 503 }, outcome: 'gateway_failure' },
    { input: { status: 504 }, outcome: 'gateway_failure' },
    { input: { error: 'ECONNREFUSED' }, outcome: 'gateway_failure' },
    { input: { error: 'ECONNRESET' }, outcome: 'gateway_failure' },
    { input: { error: 'ETIMEDOUT' }, outcome: 'gateway_failure' },
  ];
  for (const c of outcomes) {
    test(`classifyOutcome(${JSON.stringify(c.input)}) is ${c.outcome}`, () => {
      assert.equal(classifyOutcome(c.input), c.outcome);
    });
  }
});
