/**
 * Health notifications from the registry (HealthNotifier → Notifier → a webhook receiver on
 * loopback): one message per state change, hold-down against flapping, what was told kept in
 * the store, signatures, retries, and a slow receiver delaying nothing. The hold-down and the
 * retry backoff run on a fake clock; deliveries are real HTTP.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { resolveConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log';
import { Notifier } from '../../src/notify/notifier';
import { LocalElection } from '../../src/registry/election/local-election';
import { HealthNotifier, NOTIFY_PREFIX } from '../../src/registry/health-notifier';
import { startHarness, type Harness } from '../api/harness';
import { waitFor } from '../helpers/child';
import { FakeClock } from '../helpers/fake-clock';
import { metricValue } from '../helpers/proxy-harness';
import { WebhookReceiver } from '../helpers/webhook-receiver';

const HOLD_DOWN = 3_000;

describe('health notifications', () => {
  let h: Harness;
  let receiver: WebhookReceiver;
  let clock: FakeClock;
  let notifier: HealthNotifier;
  const stops: Array<() => Promise<void> | void> = [];

  async function start(webhook: Record<string, unknown> = {}, delivery: Record<string, unknown> = {}, settled = true): Promise<void> {
    const notify = resolveConfig({ notify: { holdDown: HOLD_DOWN, webhooks: [{ name: 'ops', url: receiver.url, ...webhook }], ...delivery } }).notify;
    notifier = new HealthNotifier({
      view: h.view,
      store: h.store,
      election: new LocalElection(() => '127.0.0.1:8500'),
      notifier: new Notifier(notify, silentLogger(), clock),
      holdDownMs: notify.holdDown,
      self: () => '127.0.0.1:8500',
      logger: silentLogger(),
      scheduler: clock,
    });
    notifier.start();
    stops.push(() => notifier.stop());
    await waitFor('the notifier to lead', () => notifier.leading, 5_000, 1);
    if (settled) await settle();
  }

  /**
   * Lets hold-downs pass on the fake clock until nothing is pending or being delivered. Time
   * moves on each poll, so a change the view delivers late still gets its hold-down.
   */
  async function settle(): Promise<void> {
    await waitFor('notifications to be delivered', () => {
      if (!notifier.busy) return true;
      clock.advance(HOLD_DOWN);
      return false;
    }, 5_000, 5);
  }

  async function register(id: string, service = 'web', status: 'passing' | 'critical' = 'passing'): Promise<void> {
    await h.writer.register({
      id,
      service,
      address: '127.0.0.1',
      port: 8000,
      tags: ['team-a'],
      meta: {},
      weights: { passing: 1, warning: 1 },
      checks: [{ checkId: `service:${id}`, name: 'ttl', type: 'ttl', ttlMs: 60_000, status }],
      replaceExistingChecks: true,
    });
    await waitFor(`the view to show ${id}`, () => h.view.instance(id) !== undefined, 5_000, 1);
  }

  /** Writes a check result and waits until the view (which the notifier follows) shows it. */
  async function setStatus(id: string, status: 'passing' | 'critical', output = status === 'critical' ? 'connection refused' : 'ok'): Promise<void> {
    await h.writer.updateCheck(`service:${id}`, status, output);
    await waitFor(`the view to show ${id} ${status}`, () => {
      const check = h.view.instance(id)?.checks[0];
      return check?.status === status && check.output === output;
    }, 5_000, 1);
  }

  beforeEach(async () => {
    h = await startHarness();
    receiver = await WebhookReceiver.start();
    clock = new FakeClock();
    await register('web-1');
    await register('web-2');
  });

  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    await receiver.close();
    await h.close();
  });


  it('one message per state change: instance critical, then recovered; the leader announces itself', async () => {
    await start();
    assert.deepEqual(receiver.events(), ['leader-change']);
    await setStatus('web-1', 'critical', 'connection refused');
    await settle();
    await setStatus('web-1', 'critical', 'still refused');
    await settle();
    await setStatus('web-1', 'passing');
    await settle();
    assert.deepEqual(receiver.events(), ['leader-change', 'instance-critical web-1', 'instance-recovered web-1']);
    const critical = receiver.received[1].body as unknown as { service: string; status: string; checks: Array<{ output: string }> };
    assert.equal(critical.service, 'web');
    assert.equal(critical.status, 'critical');
    assert.equal(critical.checks[0].output, 'connection refused');
  });

  it('the last instance going critical: the service is down; one coming back: up', async () => {
    await start();
    await Promise.all([setStatus('web-1', 'critical'), setStatus('web-2', 'critical')]);
    await settle();
    await setStatus('web-2', 'passing');
    await settle();
    assert.deepEqual(receiver.events().sort(), ['instance-critical web-1', 'instance-critical web-2', 'instance-recovered web-2', 'leader-change', 'service-down web', 'service-up web'].sort());
  });

  it('an instance registered critical whose check has not reported yet is starting: nothing is told', async () => {
    await start();
    await register('web-3', 'web', 'critical');
    await register('new-1', 'fresh', 'critical');
    await settle();
    assert.deepEqual(receiver.events(), ['leader-change']);
    await setStatus('web-3', 'critical', 'TTL expired');
    await settle();
    assert.deepEqual(receiver.events(), ['leader-change', 'instance-critical web-3']);
  });

  it('flapping inside the hold-down tells nothing', async () => {
    await start();
    for (let i = 0; i < 5; i++) {
      await setStatus('web-1', 'critical');
      await new Promise((resolve) => setImmediate(resolve));
      clock.advance(HOLD_DOWN / 10);
      await setStatus('web-1', 'passing');
      await new Promise((resolve) => setImmediate(resolve));
      clock.advance(HOLD_DOWN / 10);
    }
    await settle();
    assert.deepEqual(receiver.events(), ['leader-change']);
  });

  it('what was told is in the store; a new leader tells only what differs, once', async () => {
    await start();
    await setStatus('web-1', 'critical');
    await settle();
    assert.ok(await h.store.get(`${NOTIFY_PREFIX}i/web-1`), 'web-1 told critical');
    notifier.stop();
    // While nobody leads, web-2 fails and web-1 recovers.
    await setStatus('web-2', 'critical');
    await setStatus('web-1', 'passing');
    await start();
    assert.deepEqual(receiver.events().sort(), ['instance-critical web-1', 'instance-critical web-2', 'instance-recovered web-1', 'leader-change', 'leader-change'].sort());
    assert.equal(await h.store.get(`${NOTIFY_PREFIX}i/web-1`), undefined);
    // A third leader has nothing new to tell.
    notifier.stop();
    await start();
    assert.equal(receiver.events().filter((e) => e !== 'leader-change').length, 3);
  });

  it('filters: events, services (prefix*) and tags', async () => {
    await register('db-1', 'db');
    await start({ events: ['instance-critical'], services: ['we*'], tags: ['team-a'] });
    await Promise.all([setStatus('web-1', 'critical'), setStatus('db-1', 'critical')]);
    await settle();
    await setStatus('web-1', 'passing');
    await settle();
    assert.deepEqual(receiver.events(), ['instance-critical web-1']);
  });

  it('a secret signs the body: X-Switchboard-Signature verifies', async () => {
    await start({ secret: 's3cret' });
    const message = receiver.received[0];
    const expected = `sha256=${createHmac('sha256', 's3cret').update(message.raw).digest('hex')}`;
    assert.equal(message.headers['x-switchboard-signature'], expected);
    assert.equal(message.headers['x-switchboard-event'], 'leader-change');
  });

  it('a failing receiver gets retries with backoff, then the message once', async () => {
    receiver.script.push(500, 503);
    await start({}, { backoff: 1_000, retries: 5 }, false);
    // Two failures: retries wait 1 s, then 2 s on the fake clock — advanced only once the
    // webhook has armed its backoff timer (it does so after reading the failed answer).
    await waitFor('the first failure and its backoff', () => receiver.script.length === 1 && clock.pending === 1, 5_000, 5);
    clock.advance(1_000);
    await waitFor('the second failure and its backoff', () => receiver.script.length === 0 && clock.pending === 1, 5_000, 5);
    clock.advance(2_000);
    await waitFor('the delivery', () => receiver.received.length === 1, 5_000, 5);
    assert.deepEqual(receiver.events(), ['leader-change']);
    assert.ok((await metricValue('switchboard_notifications_total', { webhook: 'ops', result: 'failed' })) >= 2);
  });

  it('a receiver that never answers delays no check update', async () => {
    receiver.script.push(0);
    await start({}, { timeout: 60_000 }, false);
    await waitFor('the receiver to hold the first delivery', () => receiver.holding === 1, 5_000, 5);
    // The registry keeps writing while the webhook hangs.
    for (let i = 0; i < 5; i++) {
      await setStatus('web-1', i % 2 === 0 ? 'critical' : 'passing');
      await setStatus('web-2', i % 2 === 0 ? 'critical' : 'passing');
    }
    assert.equal(h.view.instance('web-2')?.checks[0].status, 'critical');
    receiver.release();
  });
});
