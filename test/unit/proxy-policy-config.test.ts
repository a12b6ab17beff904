import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, defaultServicePolicy, loadConfig } from '../../src/config/load';

const dir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-policy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function load(yaml: string, flags: Record<string, string> = {}) {
  const file = path.join(dir, `policy-${fileCount++}.yaml`);
  writeFileSync(file, yaml);
  return loadConfig({ file, env: {}, flags });
}

function assertInvalid(yaml: string, field: string, reason: RegExp): void {
  assert.throws(
    () => load(yaml),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
      assert.equal(err.code, 'config_invalid');
      assert.equal(err.field, field);
      assert.match(err.message, reason);
      return true;
    },
  );
}

describe('proxy service policies: defaults', () => {
  test('with nothing configured every service gets the documented defaults', () => {
    const config = load('');
    assert.deepEqual(config.proxy.defaults, defaultServicePolicy());
    assert.deepEqual(config.proxy.services, {});
    assert.deepEqual(config.proxy.clientTimeouts, { header: 10_000, request: 60_000 });
    const policy = defaultServicePolicy();
    assert.equal(policy.balancer, 'weighted-round-robin');
    assert.equal(policy.hashKey, 'ip');
    assert.deepEqual(policy.slowStart, { window: 0, aggression: 1, minWeightPercent: 10 });
    assert.deepEqual(policy.latencyAware, { enabled: true, decay: 1_000, tolerance: 1.5, minWeightPercent: 0.5 });
    assert.deepEqual(policy.healthCheck, {
      enabled: false,
      path: '/',
      interval: 5_000,
      timeout: 2_000,
      healthyThreshold: 2,
      unhealthyThreshold: 3,
      expectedStatuses: [[200, 399]],
      jitter: 0,
      jitterPercent: 10,
      maxConcurrentProbes: 16,
    });
    assert.deepEqual(policy.outlierDetection, {
      consecutive5xx: 5,
      consecutiveGatewayFailure: 3,
      baseEjectionTime: 30_000,
      maxEjectionTime: 300_000,
      maxEjectionPercent: 10,
      decayInterval: 10_000,
      slowFactor: 0,
    });
    assert.equal(policy.panicThreshold, 50);
    assert.deepEqual(policy.retries, {
      attempts: 2,
      perTryTimeout: 0,
      retryOn: ['connect-failure', 'reset', 'timeout', 'gateway-error', '5xx'],
      budgetPercent: 20,
      minRetryConcurrency: 10,
      hedge: false,
      adaptiveTimeout: { enabled: true, floor: 250, multiplier: 3, minSamples: 20, fallback: 5_000, decay: 10_000 },
      bufferBodyUpTo: 65_536,
    });
    assert.deepEqual(policy.limits, { maxConcurrent: 1024, maxPending: 0, maxPendingWait: 1_000 });
  });

  test('the example config documents exactly the built-in defaults', () => {
    const example = path.resolve(__dirname, '../../../config/switchboard.example.yaml');
    const config = loadConfig({ file: example, env: {}, flags: {} });
    assert.deepEqual(config.proxy.defaults, defaultServicePolicy());
    assert.deepEqual(config.proxy.clientTimeouts, { header: 10_000, request: 60_000 });
  });

  test('the resolved policies are frozen', () => {
    const config = load('proxy:\n  services:\n    users: { balancer: random }\n');
    assert.ok(Object.isFrozen(config.proxy.services?.users.retries.retryOn));
    assert.ok(Object.isFrozen(defaultServicePolicy().limits));
  });
});

describe('proxy service policies: overrides', () => {
  test('a service override merges over the defaults section by section', () => {
    const config = load(
      [
        'proxy:',
        '  defaults:',
        '    retries: { attempts: 1, perTryTimeout: 2s }',
        '    panicThreshold: 30',
        '  services:',
        '    users:',
        '      balancer: ring-hash',
        '      hashKey: cookie:session',
        '      retries: { perTryTimeout: 250ms, retryOn: [connect-failure, 5xx] }',
        '      healthCheck: { enabled: true, path: /healthz, interval: 1s, expectedStatuses: [200, "204-206"] }',
        '      limits: { maxConcurrent: 10, maxPending: 5, maxPendingWait: 500ms }',
        '      slowStart: { window: 30s, aggression: 2 }',
      ].join('\n'),
    );
    const users = config.proxy.services?.users;
    assert.ok(users);
    assert.equal(users.balancer, 'ring-hash');
    assert.equal(users.hashKey, 'cookie:session');
    assert.equal(users.panicThreshold, 30, 'inherited from defaults');
    assert.equal(users.retries.attempts, 1, 'inherited from defaults.retries');
    assert.equal(users.retries.perTryTimeout, 250);
    assert.deepEqual(users.retries.retryOn, ['connect-failure', '5xx']);
    assert.equal(users.retries.budgetPercent, 20, 'built-in default');
    assert.deepEqual(users.healthCheck.expectedStatuses, [
      [200, 200],
      [204, 206],
    ]);
    assert.equal(users.healthCheck.interval, 1_000);
    assert.equal(users.healthCheck.timeout, 2_000);
    assert.deepEqual(users.limits, { maxConcurrent: 10, maxPending: 5, maxPendingWait: 500 });
    assert.deepEqual(users.slowStart, { window: 30_000, aggression: 2, minWeightPercent: 10 });
    assert.equal(config.proxy.defaults?.retries.perTryTimeout, 2_000);
    assert.equal(config.proxy.defaults?.balancer, 'weighted-round-robin');
  });

  test('client timeouts come from the file and from flags', () => {
    const config = load('proxy:\n  clientTimeouts: { header: 2s, request: 0 }\n', { 'client-header-timeout': '3s' });
    assert.deepEqual(config.proxy.clientTimeouts, { header: 3_000, request: 0 });
  });
});

describe('proxy service policies: invalid values stop the load, naming the field', () => {
  const cases: Array<{ name: string; yaml: string; field: string; reason: RegExp }> = [
    {
      name: 'an unknown balancer',
      yaml: 'proxy:\n  services:\n    users: { balancer: fastest }\n',
      field: 'proxy.services.users.balancer',
      reason: /must be one of weighted-round-robin, least-request, ring-hash, random, got "fastest"/,
    },
    {
      name: 'an unknown default balancer',
      yaml: 'proxy:\n  defaults: { balancer: maglev }\n',
      field: 'proxy.defaults.balancer',
      reason: /must be one of/,
    },
    { name: 'a malformed hash key', yaml: 'proxy:\n  defaults: { hashKey: "query:x" }\n', field: 'proxy.defaults.hashKey', reason: /"ip", "header:<name>" or "cookie:<name>"/ },
    { name: 'a misspelt policy field', yaml: 'proxy:\n  services:\n    users: { retry: { attempts: 1 } }\n', field: 'proxy.services.users.retry', reason: /unknown field/ },
    { name: 'a misspelt field inside a section', yaml: 'proxy:\n  services:\n    users: { retries: { attempt: 1 } }\n', field: 'proxy.services.users.retries.attempt', reason: /unknown field/ },
    { name: 'an unknown retryOn', yaml: 'proxy:\n  defaults: { retries: { retryOn: [always] } }\n', field: 'proxy.defaults.retries.retryOn[0]', reason: /must be one of connect-failure/ },
    { name: 'a backwards status range', yaml: 'proxy:\n  defaults: { healthCheck: { expectedStatuses: ["299-200"] } }\n', field: 'proxy.defaults.healthCheck.expectedStatuses[0]', reason: /inclusive range/ },
    { name: 'a panic threshold above 100', yaml: 'proxy:\n  defaults: { panicThreshold: 150 }\n', field: 'proxy.defaults.panicThreshold', reason: /must be <= 100/ },
    { name: 'zero max concurrent', yaml: 'proxy:\n  services:\n    s: { limits: { maxConcurrent: 0 } }\n', field: 'proxy.services.s.limits.maxConcurrent', reason: /must be >= 1/ },
    { name: 'a max ejection time below the base', yaml: 'proxy:\n  services:\n    s: { outlierDetection: { baseEjectionTime: 1m, maxEjectionTime: 10s } }\n', field: 'proxy.services.s.outlierDetection.maxEjectionTime', reason: /must not be shorter than baseEjectionTime/ },
    { name: 'a header timeout longer than the request timeout', yaml: 'proxy:\n  clientTimeouts: { header: 2m, request: 1m }\n', field: 'proxy.clientTimeouts.header', reason: /must not be longer/ },
  ];
  for (const c of cases) test(c.name, () => assertInvalid(c.yaml, c.field, c.reason));
});
