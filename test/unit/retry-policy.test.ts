import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultServicePolicy } from '../../src/config/load';
import type { RetryOn } from '../../src/config/types';
import { BODY_BUFFERED, BODY_NONE, BODY_STREAMED, bodyMode } from '../../src/proxy/forward/body';
import { RetryBudget } from '../../src/proxy/retry-budget';
import { RetryPolicy, statusFailureKind, type RetryCandidate } from '../../src/proxy/retry-policy';

function policy(overrides: { retryOn?: RetryOn[]; attempts?: number } = {}, budget = new RetryBudget('retry-unit', defaultServicePolicy().retries)): RetryPolicy {
  return new RetryPolicy('retry-unit', { ...defaultServicePolicy().retries, ...overrides }, budget);
}

const base: RetryCandidate = { kind: 'connect-failure', method: 'GET', tries: 1, bodyReplayable: true, clientResponseStarted: false };

describe('RetryPolicy.mayRetry (default retryOn)', () => {
  const cases: Array<{ name: string; failure: Partial<RetryCandidate>; retried: boolean }> = [
    { name: 'GET refused', failure: {}, retried: true },
    { name: 'POST refused (nothing reached the upstream)', failure: { method: 'POST' }, retried: true },
    { name: 'POST with a streamed body refused before it was read', failure: { method: 'POST', bodyReplayable: true }, retried: true },
    { name: 'POST with a consumed streamed body', failure: { method: 'POST', bodyReplayable: false }, retried: false },
    { name: 'GET reset', failure: { kind: 'reset' }, retried: true },
    { name: 'POST reset', failure: { kind: 'reset', method: 'POST' }, retried: false },
    { name: 'PATCH per-try timeout', failure: { kind: 'timeout', method: 'PATCH' }, retried: false },
    { name: 'DELETE per-try timeout', failure: { kind: 'timeout', method: 'DELETE' }, retried: true },
    { name: 'GET 503', failure: { kind: 'gateway-error', status: 503 }, retried: true },
    { name: 'POST 502', failure: { kind: 'gateway-error', status: 502, method: 'POST' }, retried: false },
    { name: 'GET 500 (5xx is in the default retryOn)', failure: { kind: '5xx', status: 500 }, retried: true },
    { name: 'POST 500', failure: { kind: '5xx', status: 500, method: 'POST' }, retried: false },
    { name: 'third try with 2 retries allowed', failure: { tries: 2 }, retried: true },
    { name: 'no tries left', failure: { tries: 3 }, retried: false },
    { name: 'the client already has response bytes', failure: { clientResponseStarted: true }, retried: false },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.retried ? 'retried' : 'not retried'}`, () => {
      const budget = new RetryBudget('retry-unit', defaultServicePolicy().retries);
      assert.equal(policy({}, budget).mayRetry({ ...base, ...c.failure }), c.retried);
      assert.equal(budget.active.retries, c.retried ? 1 : 0, 'a retry holds one budget slot');
    });
  }
});

describe('RetryPolicy: retryOn and the budget', () => {
  it('5xx in retryOn retries a GET 500, still never a POST 500', () => {
    const p = policy({ retryOn: ['5xx'] });
    assert.equal(p.retriesStatus(500), true);
    assert.equal(p.mayRetry({ ...base, kind: '5xx', status: 500 }), true);
    assert.equal(p.mayRetry({ ...base, kind: '5xx', status: 500, method: 'POST' }), false);
  });

  it('5xx alone also covers 502/503/504', () => {
    const p = policy({ retryOn: ['5xx'] });
    assert.equal(p.mayRetry({ ...base, kind: 'gateway-error', status: 503 }), true);
    assert.equal(p.mayRetry(base), false, 'a refused connection is not a 5xx');
  });

  it('a failure kind missing from retryOn is not retried', () => {
    const p = policy({ retryOn: ['gateway-error'] });
    assert.equal(p.mayRetry(base), false);
    assert.equal(p.mayRetry({ ...base, kind: '5xx', status: 500 }), false);
    assert.equal(p.retriesStatus(500), false);
    assert.equal(p.retriesStatus(504), true);
  });

  it('stops at the budget: minRetryConcurrency retries in flight at most', () => {
    const budget = new RetryBudget('retry-unit', { budgetPercent: 0, minRetryConcurrency: 2 });
    const p = policy({}, budget);
    assert.deepEqual([p.mayRetry(base), p.mayRetry(base), p.mayRetry(base)], [true, true, false]);
    budget.retryFinished();
    assert.equal(p.mayRetry(base), true);
  });

  it('maps statuses to failure kinds', () => {
    assert.deepEqual([502, 503, 504, 500, 501].map(statusFailureKind), ['gateway-error', 'gateway-error', 'gateway-error', '5xx', '5xx']);
  });
});

describe('bodyMode', () => {
  // bodyLength as request-head.ts reads it: Content-Length, -1 for chunked, 0 for none.
  const cases: Array<{ name: string; bodyLength: number; expected: number }> = [
    { name: 'no body', bodyLength: 0, expected: BODY_NONE },
    { name: 'within bufferBodyUpTo', bodyLength: 1024, expected: BODY_BUFFERED },
    { name: 'past bufferBodyUpTo', bodyLength: 1025, expected: BODY_STREAMED },
    { name: 'chunked', bodyLength: -1, expected: BODY_STREAMED },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(bodyMode(c.bodyLength, 1024), c.expected));
  }
});
