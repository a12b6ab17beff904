import { ConfigError, resolveConfig } from '../../src/config/load';
import { policySection } from '../helpers/policy';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { registry } from '../../src/metrics';
import { RetryBudget } from '../../src/proxy/retry-budget';
import { isRetriable, type AttemptFailure } from '../../src/proxy/retry-policy';

describe('RetryBudget', () => {
  const limits: { active: number; percent?: number; min?: number; allowed: number }[] = [
    { active: 0, allowed: 10 },
    { active: 20, allowed: 10 },
    { active: 50, allowed: 10 },
    { active: 55, allowed: 11 },
    { active: 100, allowed: 20 },
    { active: 10, min: 3, allowed: 3 },
    { active: 20, min: 3, allowed: 4 },
    { active: 100, percent: 50, allowed: 50 },
    { active: 5, percent: 20, min: 0, allowed: 1 },
    { active: 4, percent: 20, min: 0, allowed: 0 },
  ];
  for (const c of limits) {
    test(`${c.active} active requests at ${c.percent ?? 20}% (min ${c.min ?? 10}) allow ${c.allowed} concurrent retries`, () => {
      const budget = new RetryBudget('users', policySection('retries', { budgetPercent: c.percent ?? 20, minRetryConcurrency: c.min ?? 10 }));
      for (let i = 0; i < c.active; i++) budget.requestStarted();
      let granted = 0;
      while (granted <= c.allowed && budget.tryAcquireRetry()) granted++;
      assert.equal(granted, c.allowed);
    });
  }

  test('a finished retry frees its place; finished requests shrink the budget', () => {
    const budget = new RetryBudget('users', { minRetryConcurrency: 1, budgetPercent: 50 });
    for (let i = 0; i < 4; i++) budget.requestStarted();
    assert.equal(budget.tryAcquireRetry(), true);
    assert.equal(budget.tryAcquireRetry(), true);
    assert.equal(budget.tryAcquireRetry(), false);
    budget.retryFinished();
    assert.equal(budget.tryAcquireRetry(), true);
    budget.retryFinished();
    budget.retryFinished();
    for (let i = 0; i < 4; i++) budget.requestFinished();
    assert.equal(budget.limit(), 1);
    assert.deepEqual(budget.active, { requests: 0, retries: 0 });
    budget.requestFinished();
    budget.retryFinished();
    assert.deepEqual(budget.active, { requests: 0, retries: 0 }, 'never negative');
  });

  test('refused retries are counted', async () => {
    const budget = new RetryBudget('budget-metrics', policySection('retries', { minRetryConcurrency: 0 }));
    assert.equal(budget.tryAcquireRetry(), false);
    const text = await registry.getSingleMetricAsString('switchboard_proxy_retry_budget_exhausted_total');
    assert.match(text, /service="budget-metrics"} 1/);
  });

  test('invalid settings are configuration errors naming the field (the schema checks them)', () => {
    for (const [field, value] of [['budgetPercent', 120], ['minRetryConcurrency', -1]] as const) {
      assert.throws(
        () => resolveConfig({ proxy: { defaults: { retries: { [field]: value } } } }),
        (err: unknown) => err instanceof ConfigError && err.field === `proxy.defaults.retries.${field}`,
      );
    }
  });
});

describe('isRetriable', () => {
  const base: AttemptFailure = { method: 'GET', bytesSentToUpstream: 0, bodyReplayable: true };
  const cases: { name: string; failure: Partial<AttemptFailure>; retriable: boolean }[] = [
    { name: 'GET refused before sending', failure: { errorCode: 'ECONNREFUSED' }, retriable: true },
    { name: 'POST refused before sending', failure: { method: 'POST', errorCode: 'ECONNREFUSED' }, retriable: true },
    { name: 'PATCH connect timeout before sending', failure: { method: 'PATCH', errorCode: 'ETIMEDOUT' }, retriable: true },
    { name: 'POST reset after bytes were sent', failure: { method: 'POST', errorCode: 'ECONNRESET', bytesSentToUpstream: 120 }, retriable: false },
    { name: 'GET reset after bytes were sent', failure: { errorCode: 'ECONNRESET', bytesSentToUpstream: 120 }, retriable: true },
    { name: 'PUT reset after bytes were sent', failure: { method: 'PUT', errorCode: 'ECONNRESET', bytesSentToUpstream: 300 }, retriable: true },
    { name: 'lower-case method names count', failure: { method: 'delete', errorCode: 'ECONNRESET', bytesSentToUpstream: 1 }, retriable: true },
    { name: 'GET 502', failure: { status: 502, bytesSentToUpstream: 80 }, retriable: true },
    { name: 'HEAD 503', failure: { method: 'HEAD', status: 503, bytesSentToUpstream: 80 }, retriable: true },
    { name: 'OPTIONS 504', failure: { method: 'OPTIONS', status: 504, bytesSentToUpstream: 80 }, retriable: true },
    { name: 'TRACE 502', failure: { method: 'TRACE', status: 502, bytesSentToUpstream: 80 }, retriable: true },
    { name: 'POST 503', failure: { method: 'POST', status: 503, bytesSentToUpstream: 80 }, retriable: false },
    { name: 'PATCH 502', failure: { method: 'PATCH', status: 502, bytesSentToUpstream: 80 }, retriable: false },
    { name: 'GET 500', failure: { status: 500, bytesSentToUpstream: 80 }, retriable: false },
    { name: 'GET 429', failure: { status: 429, bytesSentToUpstream: 80 }, retriable: false },
    { name: 'PUT 503 with a streamed body', failure: { method: 'PUT', status: 503, bytesSentToUpstream: 80, bodyReplayable: false }, retriable: false },
    { name: 'PUT 503 with a buffered body', failure: { method: 'PUT', status: 503, bytesSentToUpstream: 80, bodyReplayable: true }, retriable: true },
    { name: 'POST refused with a streamed body', failure: { method: 'POST', errorCode: 'ECONNREFUSED', bodyReplayable: false }, retriable: false },
    { name: 'neither a status nor an error', failure: {}, retriable: false },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.retriable ? 'retried' : 'not retried'}`, () => {
      assert.equal(isRetriable({ ...base, ...c.failure }), c.retriable);
    });
  }
});
