import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { CatalogView } from '../../src/registry/catalog-view';
import type { RegistrationSpec } from '../../src/registry/catalog-writer';
import { TtlExpiryLoop } from '../../src/registry/checks/ttl-expiry';
import { waitFor } from '../helpers/child';
import { FakeClock } from '../helpers/fake-clock';
import { cleanupsAfterEach, memoryRegistry, webRegistration } from '../helpers/registry-fixtures';

const spec = (id: string, ttlMs: number): RegistrationSpec =>
  webRegistration(id, [{ checkId: `service:${id}`, name: 'ttl', type: 'ttl', ttlMs, status: 'passing' }]);

const cleanups = cleanupsAfterEach();

/** The loop's timers and the writer's deadlines both run on `clock`: TTLs lapse when a test says. */
async function setup(leading: boolean) {
  const clock = new FakeClock();
  const { store, view, election, writer } = await memoryRegistry(cleanups, { leading, now: () => clock.now() });
  const expired: string[] = [];
  const scans = { count: 0 };
  const instances = view.instances.bind(view);
  // Counts full-catalog scans: after start, a write must not cause one.
  view.instances = () => {
    scans.count++;
    return instances();
  };
  const countingWriter = {
    expireCheck: (instanceId: string, checkId: string) => {
      expired.push(instanceId);
      return writer.expireCheck(instanceId, checkId);
    },
    reap: (instanceId: string) => writer.reap(instanceId),
  };
  const loop = new TtlExpiryLoop({ view, writer: countingWriter, election, logger: silentLogger(), scheduler: clock });
  cleanups.push(() => loop.stop());
  /** Fires whatever is due (time stands still) until `condition` holds: passes are async. */
  const runUntil = (what: string, condition: () => boolean) =>
    waitFor(what, () => {
      clock.advance(0);
      return condition();
    }, 5000, 1);
  /** Waits until the loop is armed for `at` (the view has caught up with a write). */
  const armedFor = (at: number) => waitFor(`the wake-up for ${at}`, () => loop.earliest === at, 5000, 1);
  return { store, view, writer, election, loop, expired, scans, clock, runUntil, armedFor };
}

const status = (view: CatalogView, id: string) => view.instance(id)?.checks[0].status;

const withService = (s: RegistrationSpec, service: string): RegistrationSpec => ({ ...s, service });

describe('TtlExpiryLoop', () => {
  it('does nothing while following, and catches up when it becomes leader', async () => {
    const { view, writer, election, loop, clock, runUntil } = await setup(false);
    loop.start();
    await writer.register(spec('web-1', 20));
    await waitFor('the view to show web-1', () => view.instance('web-1') !== undefined);
    clock.advance(100);
    assert.equal(loop.idle, true, 'a follower arms no wake-up');
    assert.equal(status(view, 'web-1'), 'passing', 'a follower never expires checks');
    election.setLeader(true);
    await runUntil('the leader to expire it', () => status(view, 'web-1') === 'critical');
  });

  it('wakes for the earliest deadline even when it was registered after a later one', async () => {
    const { view, writer, loop, clock, runUntil, armedFor } = await setup(true);
    loop.start();
    await writer.register(spec('slow', 3_600_000));
    await writer.register(spec('fast', 50));
    await armedFor(clock.now() + 50);
    clock.advance(50);
    await runUntil('the short TTL to lapse', () => status(view, 'fast') === 'critical');
    assert.equal(status(view, 'slow'), 'passing');
  });

  it('loses to a heartbeat that lands first', async () => {
    const { view, writer, clock } = await setup(true);
    await writer.register(spec('web-1', 1));
    await waitFor('the view to have its deadline', () => view.ttlDeadline('service:web-1') !== undefined);
    clock.advance(2);
    const ttl = 60_000;
    await writer.register(spec('web-1', ttl));
    // The re-registration moved the deadline; a stale expiry attempt must find nothing due.
    assert.equal(await writer.expireCheck('web-1', 'service:web-1'), undefined);
    assert.equal(status(view, 'web-1'), 'passing');
  });

  it('stops cleanly with a timer armed: the wake-up is cleared, nothing runs after stop', async () => {
    const { writer, loop, expired } = await setup(true);
    loop.start();
    await writer.register(spec('web-1', 3_600_000));
    await waitFor('the wake-up for web-1 to be armed', () => loop.earliest !== undefined && !loop.idle);
    await loop.stop();
    assert.equal(loop.idle, true, 'no timer left armed, no pass running');
    // A stopped loop arms nothing for later writes either.
    await writer.register(spec('web-2', 1));
    assert.equal(loop.idle, true);
    assert.deepEqual(expired, []);
  });

  describe('incremental deadlines', () => {
    it('fires the deadline of an untouched instance after many unrelated writes, without scanning the catalog', async () => {
      const { view, writer, loop, scans, clock, runUntil, armedFor } = await setup(true);
      loop.start();
      const scansAtStart = scans.count;
      const quietDeadline = clock.now() + 150;
      await writer.register(spec('quiet', 150));
      for (let i = 0; i < 100; i++) await writer.register(withService(spec(`busy-${i}`, 3_600_000), `busy-${i % 7}`));
      await waitFor('the view to show every write', () => view.instance('busy-99') !== undefined);
      await armedFor(quietDeadline);
      clock.advance(150);
      await runUntil('the untouched instance to expire', () => status(view, 'quiet') === 'critical');
      assert.ok([...Array(100).keys()].every((i) => status(view, `busy-${i}`) === 'passing'));
      assert.equal(scans.count, scansAtStart, 'no write walked the whole catalog');
      assert.equal(loop.tracked, 100, 'the expired check has no deadline left; the 100 others do');
    });

    it('never fires the deadline of an instance that was deregistered', async () => {
      const { view, writer, loop, expired, clock, runUntil, armedFor } = await setup(true);
      loop.start();
      await writer.register(spec('gone', 30));
      await writer.deregister('gone');
      await writer.register(spec('stays', 120));
      await armedFor(clock.now() + 120);
      clock.advance(120);
      await runUntil('the remaining instance to expire', () => status(view, 'stays') === 'critical');
      assert.deepEqual(expired, ['stays'], 'the stale heap entry of the removed instance was skipped');
      assert.equal(loop.tracked, 0);
    });

    it('follows a deadline moved earlier by a re-registration with a shorter TTL', async () => {
      const { view, writer, loop, clock, runUntil, armedFor } = await setup(true);
      loop.start();
      await writer.register(spec('web-1', 3_600_000));
      await writer.register(spec('other', 3_600_000));
      await writer.register(spec('web-1', 50));
      await armedFor(clock.now() + 50);
      clock.advance(50);
      await runUntil('the shorter TTL to lapse', () => status(view, 'web-1') === 'critical');
      assert.equal(status(view, 'other'), 'passing');
    });

    it('lets a heartbeat push the deadline later: the early wake-up expires nothing, the later deadline fires', async () => {
      const { view, writer, loop, expired, clock, runUntil, armedFor } = await setup(true);
      loop.start();
      const t0 = clock.now();
      await writer.register(spec('web-1', 1000));
      await armedFor(t0 + 1000);
      clock.advance(900);
      await writer.updateCheck('service:web-1', 'passing', '');
      assert.equal(loop.earliest, t0 + 1000, 'a heartbeat leaves the earlier entry in place');
      // The early wake-up finds nothing due and re-arms for the later deadline.
      clock.advance(600);
      await runUntil('the early wake-up to find the later deadline', () => loop.earliest === t0 + 1900 && !loop.idle);
      assert.deepEqual(expired, []);
      assert.equal(status(view, 'web-1'), 'passing');
      clock.advance(500);
      await runUntil('the later deadline to fire', () => status(view, 'web-1') === 'critical');
      assert.deepEqual(expired, ['web-1']);
    });

    it('reaps an instance that stays critical past DeregisterCriticalServiceAfter', async () => {
      const { view, writer, loop, clock, runUntil } = await setup(true);
      loop.start();
      const critical = spec('doomed', 3_600_000);
      critical.checks = [{ ...critical.checks[0], status: 'critical', deregisterCriticalAfterMs: 50 }];
      await writer.register(critical);
      await writer.register(spec('kept', 3_600_000));
      await waitFor('the view to show both', () => view.instance('kept') !== undefined);
      clock.advance(50);
      await runUntil('the reap', () => view.instance('doomed') === undefined);
      assert.ok(view.instance('kept'));
      assert.equal(loop.tracked, 1);
    });
  });

  describe('fencing', () => {
    /** A fence on a candidacy key that is gone: another registry leads, ours hasn't noticed. */
    const LOST_FENCE = [{ key: 'election/deposed', modRev: 7 }];

    it('stops writing at the first fenced-off write, without retrying, until leadership comes back', async () => {
      const { view, writer, election, loop, expired, clock, runUntil } = await setup(true);
      await writer.register(spec('web-1', 20));
      await writer.register(spec('web-2', 20));
      await waitFor('the view to show both', () => view.instance('web-1') !== undefined && view.instance('web-2') !== undefined);
      clock.advance(20);
      election.fenceWith = LOST_FENCE;
      loop.start();
      await runUntil('a fenced-off attempt, then the loop at rest', () => expired.length > 0 && loop.idle);
      assert.equal(expired.length, 1, 'one refused write, no retries, no further writes');
      assert.equal(status(view, 'web-1'), 'passing');
      assert.equal(status(view, 'web-2'), 'passing');

      // The election notices it lost, then this process leads again with a fence that holds.
      election.fenceWith = [];
      election.setLeader(false);
      election.setLeader(true);
      await runUntil('both to expire', () => status(view, 'web-1') === 'critical' && status(view, 'web-2') === 'critical');
    });

    it('fences reaping too', async () => {
      const { store, view, writer, election, loop, clock, runUntil } = await setup(true);
      const critical = spec('doomed', 3_600_000);
      critical.checks = [{ ...critical.checks[0], status: 'critical', deregisterCriticalAfterMs: 20 }];
      await writer.register(critical);
      await waitFor('the view to show it', () => view.instance('doomed') !== undefined);
      clock.advance(20);
      const rev = (await store.range('')).rev;
      election.fenceWith = LOST_FENCE;
      loop.start();
      await runUntil('the loop to try once and rest', () => loop.idle);
      assert.ok(view.instance('doomed'), 'a deposed leader reaps nothing');
      assert.equal((await store.range('')).rev, rev);
    });
  });
});
