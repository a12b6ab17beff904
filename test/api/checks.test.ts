import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { waitFor } from '../helpers/child';
import { type Harness, get, ok, put, register, startHarness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const checkOf = (id: string, checkId: string) => h.view.instance(id)?.checks.find((c) => c.checkId === checkId);

describe('TTL checks', () => {
  it('start critical until the first pass, unless Status says otherwise', async () => {
    ok(await register(h.app, { Name: 'web', Check: { TTL: '30s' } }));
    assert.equal(checkOf('web', 'service:web')?.status, 'critical');
    const passingOnly = async () => (ok(await get(h.app, '/v1/health/service/web?passing')).json as unknown[]).length;
    assert.equal(await passingOnly(), 0);
    ok(await put(h.app, '/v1/agent/check/pass/service:web'));
    assert.equal(await passingOnly(), 1);

    ok(await register(h.app, { Name: 'api', Check: { TTL: '30s', Status: 'passing' } }));
    assert.equal(checkOf('api', 'service:api')?.status, 'passing');
  });

  it('turn critical with "TTL expired" when the heartbeat stops, and pass again on the next one', async () => {
    ok(await register(h.app, { Name: 'web', Check: { TTL: '150ms', Status: 'passing' } }));
    await waitFor('the TTL to lapse', () => checkOf('web', 'service:web')?.status === 'critical', 5000);
    assert.equal(checkOf('web', 'service:web')?.output, 'TTL expired');
    assert.ok(h.view.instance('web'), 'without DeregisterCriticalServiceAfter it stays registered');
    ok(await put(h.app, '/v1/agent/check/pass/service:web'));
    assert.equal(checkOf('web', 'service:web')?.status, 'passing');
  });

  it('expire a warning check too, but leave a heartbeating one alone', async () => {
    ok(await register(h.app, { Name: 'slow', Check: { TTL: '150ms', Status: 'warning' } }));
    ok(await register(h.app, { Name: 'steady', Check: { TTL: '1h' } }));
    ok(await put(h.app, '/v1/agent/check/pass/service:steady'));
    await waitFor('the warning TTL to lapse', () => checkOf('slow', 'service:slow')?.status === 'critical', 5000);
    assert.equal(checkOf('steady', 'service:steady')?.status, 'passing');
  });
});

describe('DeregisterCriticalServiceAfter', () => {
  it('reaps an instance whose check stays critical that long (below Consul’s 1 minute minimum too)', async () => {
    ok(await register(h.app, { Name: 'web', ID: 'web-1', Check: { TTL: '30s', DeregisterCriticalServiceAfter: '200ms' } }));
    ok(await register(h.app, { Name: 'web', ID: 'web-2', Check: { TTL: '30s', DeregisterCriticalServiceAfter: '200ms' } }));
    ok(await put(h.app, '/v1/agent/check/pass/service:web-2'));
    await waitFor('web-1 to be reaped', () => h.view.instance('web-1') === undefined, 5000);
    assert.ok(h.view.instance('web-2'), 'a passing instance is not reaped');
    assert.equal(h.view.ttlDeadline('service:web-1'), undefined);
  });

  it('reaps after a TTL lapse turned the check critical', async () => {
    ok(await register(h.app, { Name: 'web', Check: { TTL: '100ms', Status: 'passing', DeregisterCriticalServiceAfter: '100ms' } }));
    await waitFor('web to be reaped', () => h.view.instance('web') === undefined, 5000);
    assert.deepEqual(ok(await get(h.app, '/v1/health/service/web')).json, []);
  });
});

describe('HTTP and TCP checks', () => {
  it('are stored with their definition and start critical (the runner is elsewhere)', async () => {
    ok(
      await register(h.app, {
        Name: 'web',
        Checks: [
          { HTTP: 'http://10.0.0.1:8080/health', Interval: '5s', Method: 'head', Header: { 'X-Probe': ['1'] } },
          { TCP: '10.0.0.1:8080', Interval: '2s', Timeout: '1s', Name: 'port open' },
        ],
      }),
    );
    const [http, tcp] = h.view.instance('web')?.checks ?? [];
    assert.deepEqual(
      { ...http, statusSince: 0 },
      {
        checkId: 'service:web:1',
        name: "Service 'web' check",
        type: 'http',
        status: 'critical',
        output: '',
        statusSince: 0,
        http: 'http://10.0.0.1:8080/health',
        method: 'HEAD',
        header: { 'X-Probe': ['1'] },
        intervalMs: 5000,
        // Consul's default timeout (10 s) is cut to the interval: a check never outlives it.
        timeoutMs: 5000,
      },
    );
    assert.equal(tcp.checkId, 'service:web:2');
    assert.equal(tcp.name, 'port open');
    assert.equal(tcp.tcp, '10.0.0.1:8080');
    assert.equal(tcp.timeoutMs, 1000);
    const entries = ok(await get(h.app, '/v1/health/service/web')).json as { Checks: { Type: string; Definition: object }[] }[];
    assert.deepEqual(entries[0].Checks.map((c) => c.Type), ['http', 'tcp']);
    assert.deepEqual(entries[0].Checks[1].Definition, { TCP: '10.0.0.1:8080', Interval: '2s', Timeout: '1s' });
  });

  it('name a single check service:<id> whether it came as Check or as Checks[0]', async () => {
    ok(await register(h.app, { Name: 'a', Checks: [{ TTL: '10s' }] }));
    ok(await register(h.app, { Name: 'b', Check: { TTL: '10s' }, Checks: [{ TTL: '10s' }] }));
    assert.deepEqual(h.view.instance('a')?.checks.map((c) => c.checkId), ['service:a']);
    assert.deepEqual(h.view.instance('b')?.checks.map((c) => c.checkId), ['service:b:1', 'service:b:2']);
  });
});
