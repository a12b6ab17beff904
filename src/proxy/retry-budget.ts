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

/** Methods that RFC 9110 §9.2.2 defines as idempotent: sending them twice is harmless. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Gateway errors: the statuses retried unless a policy widens them. */
export const GATEWAY_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT_METHODS.has(method) || IDEMPOTENT_METHODS.has(method.toUpperCase());
}

export interface AttemptFailure {
  method: string;
  /** Node error code (ECONNREFUSED, ECONNRESET, a timeout code…) when no response arrived. */
  errorCode?: string;
  /** Upstream response status, when one arrived. */
  status?: number;
  /** Bytes of the request written to the upstream connection before the failure. */
  bytesSentToUpstream: number;
  /**
   * The request can be sent again in full: it has no body, its body is buffered within the
   * replay limit, or none of it has been read from the client yet. A body streamed through
   * is gone and can never be replayed.
   */
  bodyReplayable: boolean;
}

/**
 * Whether a failed attempt may be retried on another instance:
 * - nothing reached the upstream (connect refused, connect timeout…): it cannot have acted on
 *   the request, so every method may be retried;
 * - 502/503/504, resets and other failures after bytes were sent: the upstream may have acted,
 *   so only idempotent methods are retried.
 * Either way the body must be replayable. Only ask before any byte of the response reached
 * the client: after that, no retry can be invisible to it. A policy may widen the statuses
 * (retryOn `5xx`); they are still retried for idempotent methods only.
 */
export function isRetriable(failure: AttemptFailure, retriableStatuses: ReadonlySet<number> = GATEWAY_STATUSES): boolean {
  if (!failure.bodyReplayable) return false;
  const idempotent = isIdempotent(failure.method);
  if (failure.status !== undefined && failure.errorCode === undefined) {
    return idempotent && retriableStatuses.has(failure.status);
  }
  if (failure.errorCode === undefined) return false;
  return failure.bytesSentToUpstream === 0 || idempotent;
}
