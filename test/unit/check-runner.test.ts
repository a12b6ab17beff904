import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import type { Check as CheckRecord, HealthStatus } from '../../src/catalog/model';
import { silentLogger } from '../../src/log';
import type { CheckSpec, RegistrationSpec } from '../../src/registry/catalog-writer';
import type { Check, CheckResult } from '../../src/registry/checks/check';
import { CheckRunner } from '../../src/registry/checks/check-runner';
import { HttpCheck } from '../../src/registry/checks/http-check';
import { waitFor } from '../helpers/child';
import { FakeClock } from '../helpers/fake-clock';
import { cleanupsAfterEach, memoryRegistry, webRegistration } from '../helpers/registry-fixtures';

const INTERVAL = 10_000;

const httpCheck = (id: string, extra: Partial<CheckSpec> = {}): CheckSpec => ({
  checkId: `service:${id}`,
  name: 'http',
  type: 'http',
  intervalMs: INTERVAL,
  timeoutMs: 1000,
  http: `http://10.0.0.1/${id}`,
  method: 'GET',
  ...extra,
});

const spec = (id: string, extra: Partial<CheckSpec> = {}): RegistrationSpec => webRegistration(id, [httpCheck(id, extra)], true);

/** A Check whose runs the test answers: each run waits until `settle` or its signal aborts. */
class ScriptedCheck implements Check {
  readonly starts: { checkId: string; at: number }[] = [];
  readonly pending = new Map<string, (result: CheckResult) => void>();
  aborted = 0;
  inFlight = 0;
  maxInFlight = 0;
  /** When set, runs answer at once with this result. */
  answer?: HealthStatus;

  constructor(private readonly clock: FakeClock) {}

  run(check: CheckRecord, signal: AbortSignal): Promise<CheckResult> {
    this.starts.push({ checkId: check.checkId, at: this.clock.now() });
    if (this.answer) return Promise.resolve({ status: this.answer, output: `said ${this.answer}` });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<CheckResult>((resolve) => {
      let settled = false;
      const done = (result: CheckResult) => {
        if (settled) return;
        settled = true;
        this.inFlight--;
        this.pending.delete(check.checkId);
        resolve(result);
      };
      signal.addEventListener('abort', () => {
        this.aborted++;
        done({ status: 'critical', output: 'aborted' });
      });
      this.pending.set(check.checkId, done);
    });
  }

  settleAll(status: HealthStatus): void {
    for (const done of [...this.pending.values()]) done({ status, output: `said ${status}` });
  }
}

/** Deterministic uniform numbers in [0, 1) (a small LCG), so spreads don't depend on luck. */
function seededRandom(seed = 42): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

const cleanups = cleanupsAfterEach();

async function setup(options: { leading?: boolean; maxConcurrent?: number; failWrites?: number } = {}) {
  const { store, view, election, writer } = await memoryRegistry(cleanups, { leading: options.leading ?? true });
  const clock = new FakeClock();
  const check = new ScriptedCheck(clock);
  const writes: { checkId: string; status: HealthStatus }[] = [];
  let failWrites = options.failWrites ?? 0;
  const countingWriter = {
    recordCheckResult: async (instanceId: string, checkId: string, status: HealthStatus, output: string) => {
      writes.push({ checkId, status });
      if (failWrites-- > 0) throw new Error('store down');
      return writer.recordCheckResult(instanceId, checkId, status, output);
    },
  };
  const runner = new CheckRunner({
    view,
    writer: countingWriter,
    election,
    logger: silentLogger(),
    clock,
    random: seededRandom(),
    maxConcurrent: options.maxConcurrent,
    checks: { http: check, tcp: check },
  });
  cleanups.push(() => runner.stop());
  const registerAll = async (ids: string[], extra: Partial<CheckSpec> = {}) => {
    for (const id of ids) await writer.register(spec(id, extra));
    await waitFor('the view to show the registrations', () => ids.every((id) => view.instance(id)?.checks[0]?.http === spec(id, extra).checks[0].http));
  };
  const statusOf = (id: string) => view.instance(id)?.checks[0].status;
  /**
   * Moves the fake clock in steps, letting the runs that answered finish (their results and
   * writes are real promises) before the next step, as real time would.
   */
  const tick = async (ms: number, stepMs = 500) => {
    for (let moved = 0; moved < ms; moved += stepMs) {
      clock.advance(Math.min(stepMs, ms - moved));
      // Polled every millisecond: fake-clock steps are many and short.
      await waitFor('answered runs to finish', () => runner.inFlight === check.inFlight, 5_000, 1);
    }
  };
  return { store, view, writer, clock, check, election, runner, writes, registerAll, statusOf, tick };
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `web-${i}`);

describe('CheckRunner', () => {
  it('spreads first runs over the interval and jitters every later run', async () => {
    const { clock, check, runner, registerAll, tick } = await setup();
    check.answer = 'critical';
    await registerAll(ids(50));
    runner.start();
    const t0 = clock.now();
    await tick(3 * INTERVAL, 100);
    const firstRuns = new Map<string, number>();
    const runsOf = new Map<string, number[]>();
    for (const { checkId, at } of check.starts) {
      if (!firstRuns.has(checkId)) firstRuns.set(checkId, at - t0);
      runsOf.set(checkId, [...(runsOf.get(checkId) ?? []), at]);
    }
    assert.equal(firstRuns.size, 50, 'every check ran');
    const offsets = [...firstRuns.values()];
    assert.ok(new Set(offsets).size >= 45, `first runs at distinct instants: ${offsets.join(',')}`);
    assert.ok(Math.min(...offsets) < INTERVAL / 4 && Math.max(...offsets) > (INTERVAL * 3) / 4, `offsets cover the interval: ${offsets.join(',')}`);
    const gaps = [...runsOf.values()].flatMap((times) => times.slice(1).map((t, i) => t - times[i]));
    assert.ok(gaps.length > 50);
    assert.ok(gaps.every((g) => g >= INTERVAL * 0.9 && g <= INTERVAL * 1.1), `gaps within ±10%: ${gaps.join(',')}`);
    assert.ok(new Set(gaps).size > gaps.length / 2, 'gaps vary from run to run');
  });

  it('runs at most maxConcurrent checks at once and queues the rest', async () => {
    const { clock, check, runner, registerAll, statusOf } = await setup({ maxConcurrent: 4 });
    await registerAll(ids(12));
    runner.start();
    clock.advance(INTERVAL);
    assert.equal(check.inFlight, 4);
    assert.equal(check.starts.length, 4, 'the others wait in the queue');
    for (let round = 0; round < 3; round++) {
      check.settleAll('passing');
      await waitFor('the next batch from the queue', () => check.inFlight === 4 || check.starts.length === 12);
    }
    check.settleAll('passing');
    assert.equal(new Set(check.starts.map((s) => s.checkId)).size, 12, 'every queued check ran');
    assert.equal(check.maxInFlight, 4);
    await waitFor('all twelve passing', () => ids(12).every((id) => statusOf(id) === 'passing'));
  });

  it('runs only while leading: stops and aborts on losing leadership, resumes on gaining it', async () => {
    const { clock, check, election, runner, registerAll } = await setup({ leading: false });
    await registerAll(ids(3));
    runner.start();
    clock.advance(3 * INTERVAL);
    assert.equal(check.starts.length, 0, 'a follower runs nothing');
    election.setLeader(true);
    clock.advance(INTERVAL);
    assert.equal(check.inFlight, 3);
    election.setLeader(false);
    assert.equal(check.aborted, 3, 'losing leadership aborts runs in flight');
    assert.equal(runner.size, 0);
    const before = check.starts.length;
    clock.advance(3 * INTERVAL);
    assert.equal(check.starts.length, before, 'no timers left behind');
    election.setLeader(true);
    clock.advance(INTERVAL);
    assert.equal(check.starts.length, before + 3, 'resumes on gaining leadership');
  });

  it('writes only on edges: a status change, or the very first output', async () => {
    const { check, runner, registerAll, writes, statusOf, view, tick } = await setup();
    await registerAll(['web-0']);
    runner.start();
    check.answer = 'critical';
    await tick(INTERVAL);
    await waitFor('the first output to be recorded', () => view.instance('web-0')?.checks[0].output === 'said critical');
    check.answer = 'passing';
    await tick(INTERVAL * 1.1);
    await waitFor('passing', () => statusOf('web-0') === 'passing');
    await tick(5 * INTERVAL);
    check.answer = 'warning';
    await tick(INTERVAL * 1.1);
    await waitFor('warning', () => statusOf('web-0') === 'warning');
    await tick(5 * INTERVAL);
    assert.ok(check.starts.length >= 12, `ran ${check.starts.length} times`);
    assert.deepEqual(writes.map((w) => w.status), ['critical', 'passing', 'warning']);
  });

  it('retries a failed write on the next run', async () => {
    const { check, runner, registerAll, writes, statusOf, tick } = await setup({ failWrites: 1 });
    await registerAll(['web-0']);
    runner.start();
    check.answer = 'passing';
    await tick(INTERVAL);
    assert.equal(writes.length, 1);
    assert.equal(statusOf('web-0'), 'critical');
    await tick(INTERVAL * 1.1);
    await waitFor('the retried write', () => statusOf('web-0') === 'passing');
    assert.equal(writes.length, 2);
  });

  it('stops every check at a fenced-off result write, without retrying, until leadership comes back', async () => {
    const { store, clock, check, election, runner, registerAll, writes, statusOf, tick } = await setup();
    await registerAll(ids(3));
    // A candidacy key that is gone: another registry leads, and our election hasn't noticed.
    election.fenceWith = [{ key: 'election/deposed', modRev: 7 }];
    check.answer = 'passing';
    const rev = (await store.range('')).rev;
    runner.start();
    await tick(INTERVAL, 50);
    assert.equal(writes.length, 1, 'the first refused write stops the rest');
    assert.equal(runner.size, 0);
    assert.equal(clock.pending, 0, 'no timers left to retry with');
    const runs = check.starts.length;
    await tick(5 * INTERVAL);
    assert.deepEqual([check.starts.length, writes.length], [runs, 1], 'nothing runs, nothing is written');
    assert.equal((await store.range('')).rev, rev);
    assert.equal(statusOf('web-0'), 'critical');

    election.fenceWith = [];
    election.setLeader(false);
    election.setLeader(true);
    await tick(2 * INTERVAL);
    await waitFor('the results to land', () => ids(3).every((id) => statusOf(id) === 'passing'));
  });

  it('stops a deregistered instance’s check, aborting the run in flight', async () => {
    const { clock, check, runner, registerAll, writer, writes } = await setup();
    await registerAll(['web-0', 'web-1']);
    runner.start();
    clock.advance(INTERVAL);
    assert.equal(check.inFlight, 2);
    await writer.deregister('web-0');
    await waitFor('the runner to let go of web-0', () => runner.size === 1);
    assert.equal(check.aborted, 1);
    check.settleAll('passing');
    const before = check.starts.length;
    clock.advance(3 * INTERVAL);
    assert.ok(check.starts.slice(before).every((s) => s.checkId === 'service:web-1'));
    assert.ok(writes.every((w) => w.checkId === 'service:web-1'), 'the aborted run wrote nothing');
  });

  it('follows a changed definition and leaves unchanged ones on their schedule', async () => {
    const { check, runner, registerAll, tick } = await setup();
    check.answer = 'passing';
    await registerAll(['web-0', 'web-1']);
    runner.start();
    await tick(INTERVAL);
    await registerAll(['web-0'], { http: 'http://10.0.0.1/new', intervalMs: 1000 });
    const before = check.starts.length;
    await tick(INTERVAL, 100);
    const runs = check.starts.slice(before);
    const web0 = runs.filter((s) => s.checkId === 'service:web-0').length;
    const web1 = runs.filter((s) => s.checkId === 'service:web-1').length;
    assert.ok(web0 >= 8, `web-0 now runs every second (${web0} runs in ten)`);
    assert.ok(web1 <= 2, `web-1 keeps its 10 s interval (${web1} runs in ten)`);
    assert.equal(runner.size, 2);
  });

  it('stop() clears every timer and aborts runs in flight', async () => {
    const { clock, check, runner, registerAll } = await setup();
    await registerAll(ids(3));
    runner.start();
    clock.advance(INTERVAL);
    assert.equal(check.inFlight, 3);
    await runner.stop();
    assert.equal(check.aborted, 3);
    assert.equal(runner.inFlight, 0);
    assert.equal(clock.pending, 0, 'no timer left');
  });

  describe('incremental schedule', () => {
    const plain = (id: string): RegistrationSpec => ({ ...spec(id), service: 'other', checks: [] });

    it('handles a write without walking the catalog, and leaves untouched checks on their timers', async () => {
      const { clock, check, runner, registerAll, writer, view, tick } = await setup();
      check.answer = 'passing';
      await registerAll(ids(3));
      let scans = 0;
      const instances = view.instances.bind(view);
      view.instances = () => {
        scans++;
        return instances();
      };
      runner.start();
      const scansAtStart = scans;
      await tick(INTERVAL);
      const timers = clock.pending;
      for (let i = 0; i < 50; i++) await writer.register(plain(`plain-${i}`));
      await registerAll(['web-3']);
      assert.equal(scans, scansAtStart, 'no write walked the whole catalog');
      assert.equal(runner.size, 4);
      assert.equal(clock.pending, timers + 1, 'one new timer; the others were neither re-armed nor dropped');
      const before = check.starts.length;
      await tick(INTERVAL * 1.1);
      assert.deepEqual(new Set(check.starts.slice(before).map((s) => s.checkId)), new Set(ids(4).map((id) => `service:${id}`)));
    });

    it('reschedules a check whose interval changed, and only that one', async () => {
      const { clock, check, runner, registerAll, tick } = await setup();
      check.answer = 'passing';
      await registerAll(ids(2));
      runner.start();
      await tick(INTERVAL);
      const timers = clock.pending;
      await registerAll(['web-0'], { intervalMs: 2000 });
      assert.equal(clock.pending, timers, 'the old timer was cancelled, one new one armed');
      const before = check.starts.length;
      await tick(INTERVAL, 100);
      const runs = check.starts.slice(before);
      assert.ok(runs.filter((s) => s.checkId === 'service:web-0').length >= 4, 'web-0 now runs every 2 s');
      assert.ok(runs.filter((s) => s.checkId === 'service:web-1').length <= 2, 'web-1 keeps its 10 s interval');
    });

    it('drops the check of an instance that no longer lists it, and of a deregistered one', async () => {
      const { clock, check, runner, registerAll, writer } = await setup();
      await registerAll(ids(3));
      runner.start();
      await writer.register({ ...spec('web-0'), checks: [] });
      await writer.deregister('web-1');
      await waitFor('the runner to follow', () => runner.size === 1);
      clock.advance(3 * INTERVAL);
      assert.deepEqual(new Set(check.starts.map((s) => s.checkId)), new Set(['service:web-2']));
    });

    it('hands a check ID over to the instance that now owns it', async () => {
      const { clock, check, runner, registerAll, writer, view } = await setup();
      await registerAll(['web-0']);
      runner.start();
      await writer.deregister('web-0');
      await writer.register({ ...spec('web-9'), checks: [httpCheck('web-0', { http: 'http://10.0.0.1/moved' })] });
      await waitFor('the new owner in view', () => view.checkOwner('service:web-0') === 'web-9');
      assert.equal(runner.size, 1);
      clock.advance(INTERVAL);
      assert.equal(check.starts.length, 1);
      check.settleAll('passing');
      await waitFor('the result on the new owner', () => view.instance('web-9')?.checks[0].status === 'passing');
    });
  });
});

describe('HttpCheck output', () => {
  it('is the status line alone by default, and a printable excerpt of the body only when configured', async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(200, 'OK');
      res.end('secret\u0007-token-and-more');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const record = { checkId: 'c', name: 'c', type: 'http', status: 'critical', output: '', statusSince: 0, http: url, intervalMs: 1000, timeoutMs: 1000 } as const;
    try {
      const plain = await new HttpCheck().run(record, new AbortController().signal);
      assert.equal(plain.output, `HTTP GET ${url}: 200 OK`);
      const excerpt = await new HttpCheck({ outputExcerpt: 8 }).run(record, new AbortController().signal);
      assert.equal(excerpt.output, `HTTP GET ${url}: 200 OK Output: secret?-`);
    } finally {
      server.close();
    }
  });
});
