import type { ServicePolicy } from '../config/types';
import { counter } from '../metrics';

/**
 * The share of the service's `retries` policy that sizes the budget (src/config/schema.ts:
 * Envoy's budget_percent, 20 %, with Linkerd's floor of 10 concurrent retries rather than
 * Envoy's 3 — when an instance dies, every request in flight to it wants a retry at once).
 */
export type RetryBudgetConfig = Pick<ServicePolicy['retries'], 'budgetPercent' | 'minRetryConcurrency'>;

const exhaustedTotal = counter(
  'switchboard_proxy_retry_budget_exhausted_total',
  'Retries not attempted because the retry budget was spent.',
  ['service'],
);

/**
 * Envoy-style retry budget for one service: retries in flight stay below
 * max(minRetryConcurrency, budgetPercent × active requests), so when an outage turns every
 * request into a retry, retries cannot multiply the load. Counters only; no allocation.
 */
export class RetryBudget {
  readonly service: string;
  readonly config: Readonly<RetryBudgetConfig>;
  private activeRequests = 0;
  private activeRetries = 0;

  constructor(service: string, config: Readonly<RetryBudgetConfig>) {
    this.service = service;
    this.config = config;
  }

  /** A client request entered the proxy for this service (call once, not per attempt). */
  requestStarted(): void {
    this.activeRequests++;
  }

  requestFinished(): void {
    if (this.activeRequests > 0) this.activeRequests--;
  }

  /** True and counted as in flight if the budget allows one more retry; call retryFinished after. */
  tryAcquireRetry(): boolean {
    if (this.activeRetries >= this.limit()) {
      exhaustedTotal.inc({ service: this.service });
      return false;
    }
    this.activeRetries++;
    return true;
  }

  retryFinished(): void {
    if (this.activeRetries > 0) this.activeRetries--;
  }

  /** Concurrent retries allowed right now. */
  limit(): number {
    const share = Math.floor((this.config.budgetPercent * this.activeRequests) / 100);
    return Math.max(this.config.minRetryConcurrency, share);
  }

  get active(): { requests: number; retries: number } {
    return { requests: this.activeRequests, retries: this.activeRetries };
  }
}
