import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  ActiveProber,
  httpProbe,
  type ActiveProbeConfig,
  type ProbeFn,
  type ProbeOutcome,
  type ProbeTarget,
} from '../../src/proxy/health/active-prober';
import { registry } from '../../src/metrics';
import { realScheduler } from '../../src/clock';
import { ConfigError, resolveConfig } from '../../src/config/load';
import { policySection } from '../helpers/policy';
import { waitFor as waitUntil } from '../helpers/child';
import { FakeClock } from '../helpers/fake-clock';

/** Lets settled probe promises deliver their verdicts. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The suite's one waitFor, polling often: these conditions flip within milliseconds. */
const waitFor = (what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> => waitUntil(what, condition, timeoutMs, 5);

type Behaviour = number | 'hang' | 'refused';

/** A probe function whose answer per target the test sets; records every probe it runs. */
class ScriptedProbes {
  readonly behaviour = new Map<string, Behaviour>();
  readonly started: { id: string; at: number }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  aborted = 0;

  constructor(private readonly clock: FakeClock) {}

  readonly probe: ProbeFn = (target, _path, signal) => {
    this.started.push({ id: target.id, at: this.clock.now() });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const done = (outcome: ProbeOutcome): ProbeOutcome => {
      this.inFlight--;
      return outcome;
    };
    const behaviour = this.behaviour.get(target.id) ?? 200;
    if (behaviour === 'refused') return Promise.resolve(done({ error: 'ECONNREFUSED' }));
    if (behaviour === 'hang') {
      return new Promise((resolve) =>
        signal.addEventListener('abort', () => {
          this.aborted++;
          resolve(done({ error: 'ABORT_ERR' }));
        }),
      );
    }
    return Promise.resolve(done({ status: behaviour }));
  };

  count(id: string): number {
    return this.started.filter((p) => p.id === id).length;
  }
}

interface Harness {
  clock: FakeClock;
  probes: ScriptedProbes;
  prober: ActiveProber;
  events: string[];
  /** Advance fake time and let the probes that fell due settle. */
  step(ms: number): Promise<void>;
}

function harness(config: Partial<ActiveProbeConfig> = {}, random: () => number = () => 0): Harness {
  const clock = new FakeClock();
  const probes = new ScriptedProbes(clock);
  const events: string[] = [];
  const prober = new ActiveProber({
    service: 'users',
    config: policySection('healthCheck', { interval: 1_000, timeout: 100, healthyThreshold: 2, unhealthyThreshold: 3, jitterPercent: 0, ...config }),
    onChange: (id, healthy) => events.push(`${id}:${healthy ? 'up' : 'down'}`),
    scheduler: clock,
    random,
    probe: probes.probe,
  });
  const step = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await flush();
  };
  return { clock, probes, prober, events, step };
}

const target = (id: string, port = 1): ProbeTarget => ({ id, host: '127.0.0.1', port });

describe('ActiveProber thresholds (fake clock)', () => {
  test('a new target counts as healthy and goes down only after unhealthyThreshold consecutive failures', async () => {
    const h = harness();
    h.probes.behaviour.set('a', 500);
    h.prober.setTargets([target('a')]);
    assert.equal(h.prober.isHealthy('a'), true);
    await h.step(0);
    await h.step(1_000);
    assert.deepEqual(h.events, [], 'two failures are below the threshold of three');
    await h.step(1_000);
    assert.deepEqual(h.events, ['a:down']);
    assert.equal(h.prober.isHealthy('a'), false);
    await h.step(1_000);
    await h.step(1_000);
    assert.deepEqual(h.events, ['a:down'], 'only edges are reported');
    await h.prober.stop();
  });

  test('an unhealthy target returns after healthyThreshold consecutive successes; a failure resets the count', async () => {
    const h = harness();
    h.probes.behaviour.set('a', 'refused');
    h.prober.setTargets([target('a')]);
    await h.step(0);
    await h.step(1_000);
    await h.step(1_000);
    assert.deepEqual(h.events, ['a:down']);
    h.probes.behaviour.set('a', 200);
    await h.step(1_000);
    h.probes.behaviour.set('a', 'refused');
    await h.step(1_000);
    h.probes.behaviour.set('a', 200);
    await h.step(1_000);
    assert.deepEqual(h.events, ['a:down'], 'success, failure, success is not two in a row');
    await h.step(1_000);
    assert.deepEqual(h.events, ['a:down', 'a:up']);
    assert.equal(h.prober.isHealthy('a'), true);
    await h.prober.stop();
  });

  const statusCases: { name: string; expected?: [number, number][]; status: number; healthy: boolean }[] = [
    { name: 'default range accepts 204', status: 204, healthy: true },
    { name: 'default range accepts a 302 redirect', status: 302, healthy: true },
    { name: 'default range rejects 404', status: 404, healthy: false },
    { name: 'default range rejects 503', status: 503, healthy: false },
    { name: 'custom ranges accept a listed status', expected: [[200, 200], [418, 418]], status: 418, healthy: true },
    { name: 'custom ranges reject an unlisted status', expected: [[200, 200]], status: 204, healthy: false },
  ];
  for (const c of statusCases) {
    test(`expected statuses: ${c.name}`, async () => {
      const h = harness({ unhealthyThreshold: 1, ...(c.expected ? { expectedStatuses: c.expected } : {}) });
      h.probes.behaviour.set('a', c.status);
      h.prober.setTargets([target('a')]);
      await h.step(0);
      assert.equal(h.prober.isHealthy('a'), c.healthy);
      await h.prober.stop();
    });
  }

  test('a probe without an answer is aborted at timeout and counts as a failure', async () => {
    const h = harness({ unhealthyThreshold: 1, timeout: 100 });
    h.probes.behaviour.set('a', 'hang');
    h.prober.setTargets([target('a')]);
    await h.step(0);
    await h.step(99);
    assert.equal(h.probes.aborted, 0);
    assert.deepEqual(h.events, []);
    await h.step(1);
    assert.equal(h.probes.aborted, 1);
    assert.deepEqual(h.events, ['a:down']);
    await h.prober.stop();
  });

  test('first probes of many targets are spread over the first interval, never at one instant', async () => {
    const draws = [0.1, 0.5, 0.9, 0.3];
    let i = 0;
    const h = harness({}, () => draws[i++ % draws.length]);
    h.prober.setTargets(['a', 'b', 'c', 'd'].map((id) => target(id)));
    const start = h.clock.now();
    await h.step(1_000);
    const offsets = h.probes.started.map((p) => p.at - start).sort((x, y) => x - y);
    assert.deepEqual(offsets, [100, 300, 500, 900]);
    await h.prober.stop();
  });

  test('jitter lengthens the interval by up to jitter plus jitterPercent % of the interval', async () => {
    const h = harness({ jitter: 50, jitterPercent: 20 }, () => 0.5);
    h.prober.setTargets([target('a')]);
    await h.step(500); // first probe at 0.5 × 1000
    await h.step(1_000 + 25 + 100 - 1);
    assert.equal(h.probes.count('a'), 1);
    await h.step(1);
    assert.equal(h.probes.count('a'), 2);
    await h.prober.stop();
  });

  test('probes in flight never exceed maxConcurrentProbes; the rest wait their turn', async () => {
    const h = harness({ maxConcurrentProbes: 2, timeout: 100 });
    const ids = ['a', 'b', 'c', 'd', 'e'];
    for (const id of ids) h.probes.behaviour.set(id, 'hang');
    h.prober.setTargets(ids.map((id) => target(id)));
    await h.step(0);
    assert.equal(h.probes.inFlight, 2);
    for (let t = 0; t < 3; t++) await h.step(100);
    assert.equal(h.probes.maxInFlight, 2);
    assert.deepEqual(ids.map((id) => h.probes.count(id)), [1, 1, 1, 1, 1]);
    await h.prober.stop();
  });

  test('a removed target is no longer probed and its in-flight probe is aborted', async () => {
    const h = harness({ timeout: 500 });
    h.probes.behaviour.set('b', 'hang');
    h.prober.setTargets([target('a'), target('b')]);
    await h.step(0);
    assert.equal(h.probes.count('b'), 1);
    h.prober.setTargets([target('a')]);
    await flush();
    assert.equal(h.probes.aborted, 1);
    for (let t = 0; t < 5; t++) await h.step(1_000);
    assert.equal(h.probes.count('b'), 1);
    assert.equal(h.probes.count('a'), 6);
    assert.deepEqual(h.events, [], 'removal is not a health edge');
    await h.prober.stop();
  });

  test('a new endpoint under the same id starts fresh and is reported healthy again', async () => {
    const h = harness({ unhealthyThreshold: 1 });
    h.probes.behaviour.set('a', 500);
    h.prober.setTargets([target('a', 1)]);
    await h.step(0);
    assert.deepEqual(h.events, ['a:down']);
    h.prober.setTargets([target('a', 2)]);
    assert.deepEqual(h.events, ['a:down', 'a:up']);
    assert.equal(h.prober.isHealthy('a'), true);
    h.prober.setTargets([target('a', 2)]);
    assert.deepEqual(h.events, ['a:down', 'a:up'], 'an unchanged target keeps its state');
    await h.prober.stop();
  });

  test('stop() clears every timer and aborts in-flight probes', async () => {
    const h = harness({ timeout: 500 });
    h.probes.behaviour.set('b', 'hang');
    h.prober.setTargets([target('a'), target('b'), target('c')]);
    await h.step(0);
    assert.ok(h.clock.pending > 0);
    await h.prober.stop();
    assert.equal(h.clock.pending, 0);
    assert.equal(h.probes.aborted, 1);
    h.prober.setTargets([target('d')]);
    assert.equal(h.clock.pending, 0, 'a stopped prober schedules nothing');
  });

  // The schema is where these are checked (the prober trusts its slice of the config).
  const invalidConfigs: { config: Record<string, unknown>; field: string }[] = [
    { config: { interval: 0 }, field: 'interval' },
    { config: { timeout: -1 }, field: 'timeout' },
    { config: { unhealthyThreshold: 0 }, field: 'unhealthyThreshold' },
    { config: { jitterPercent: 200 }, field: 'jitterPercent' },
    { config: { path: 'health' }, field: 'path' },
    { config: { expectedStatuses: ['300-200'] }, field: 'expectedStatuses[0]' },
    { config: { expectedStatuses: [] }, field: 'expectedStatuses' },
  ];
  for (const c of invalidConfigs) {
    test(`an invalid ${c.field} is a configuration error naming the field`, () => {
      assert.throws(
        () => resolveConfig({ proxy: { defaults: { healthCheck: c.config } } }),
        (err: unknown) => err instanceof ConfigError && err.field === `proxy.defaults.healthCheck.${c.field}`,
      );
    });
  }
});

/** Loopback backends: one per behaviour the prober must tell apart. */
describe('ActiveProber over real sockets', () => {
  const servers: (http.Server | net.Server)[] = [];
  const sockets = new Set<net.Socket>();
  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  async function listen(server: http.Server | net.Server): Promise<number> {
    servers.push(server);
    server.on('connection', (socket: net.Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  const answering = (status: number): Promise<number> =>
    listen(http.createServer((_req, res) => res.writeHead(status).end('x')));

  let hangConnections = 0;
  const hanging = (): Promise<number> => listen(net.createServer(() => hangConnections++));

  async function closedPort(): Promise<number> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  test('httpProbe reports the status, a refused connection, and an abort', async () => {
    const ok = await answering(200);
    const failing = await answering(500);
    const hang = await hanging();
    const refused = await closedPort();
    const signal = new AbortController().signal;
    assert.deepEqual(await httpProbe(target('ok', ok), '/health', signal), { status: 200 });
    assert.deepEqual(await httpProbe(target('bad', failing), '/health', signal), { status: 500 });
    assert.deepEqual(await httpProbe(target('gone', refused), '/health', signal), { error: 'ECONNREFUSED' });
    const controller = new AbortController();
    const before = hangConnections;
    const pending = httpProbe(target('hang', hang), '/health', controller.signal);
    await waitFor('the hanging backend to accept', () => hangConnections > before);
    controller.abort();
    assert.deepEqual(await pending, { error: 'ABORT_ERR' });
  });

  test('200 stays healthy; 500, a hang (timeout) and a refused port go down; stop() ends it all', async () => {
    const ports = { ok: await answering(200), error: await answering(500), hang: await hanging(), refused: await closedPort() };
    const down = new Set<string>();
    const verdicts = new Map<string, number>();
    const prober = new ActiveProber({
      service: 'probe-e2e',
      config: policySection('healthCheck', { path: '/health', interval: 20, timeout: 150, unhealthyThreshold: 2, healthyThreshold: 2 }),
      onChange: (id, healthy) => (healthy ? down.delete(id) : down.add(id)),
      scheduler: realScheduler,
      probe: async (t, path, signal) => {
        const outcome = await httpProbe(t, path, signal);
        verdicts.set(t.id, (verdicts.get(t.id) ?? 0) + 1);
        return outcome;
      },
    });
    try {
      prober.setTargets(Object.entries(ports).map(([id, port]) => target(id, port)));
      await waitFor('the three failing backends to go down', () => down.size === 3);
      await waitFor('several probes of the good backend', () => (verdicts.get('ok') ?? 0) >= 4);
      assert.deepEqual([...down].sort(), ['error', 'hang', 'refused']);
      assert.equal(prober.isHealthy('ok'), true);
    } finally {
      await prober.stop();
    }
    const metrics = await registry.getSingleMetricAsString('switchboard_proxy_health_probes_total');
    assert.match(metrics, /service="probe-e2e",result="success"/);
    assert.match(metrics, /service="probe-e2e",result="failure"/);
  });
});
