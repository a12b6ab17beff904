import type { RetryOn, ServicePolicy } from '../config/types';
import { counter } from '../metrics';
import { isGatewayStatus } from './gateway-status';
import type { RetryBudget } from './retry-budget';

/**
 * The retry wrapper around "forward this request": after a failed attempt, may the exchange
 * try another instance? Yes only when every one of these holds:
 *  - the client has not received a byte of the response (a retry must stay invisible);
 *  - the failure is one the service retries on (`retryOn`), and the method allows it: a
 *    request that never reached the upstream may be retried whatever its method; anything
 *    that may have reached it (reset, timeout, 5xx) only for idempotent methods;
 *  - the body can be sent again (none, buffered, or a streamed one not read yet);
 *  - attempts are left, and the retry budget has room (it is taken here, and given back when
 *    the retry's attempt ends).
 */

/** Why an attempt failed; the same names as `retryOn`. */
export type FailureKind = RetryOn;

const retriesTotal = counter('switchboard_proxy_retries_total', 'Requests retried on another instance, by what failed.', [
  'service',
  'reason',
]);

const hedgesTotal = counter('switchboard_proxy_hedges_total', 'Hedged tries: a second try sent to another instance while a slow first one kept going (retries.hedge).', ['service']);

export class RetryPolicy {
  /** Retries after the first try. */
  readonly attempts: number;
  readonly perTryTimeout: number;
  readonly bufferBodyUpTo: number;
  /** Send a hedged try instead of cancelling one that passed its per-try timeout. */
  readonly hedge: boolean;
  private readonly on: ReadonlySet<RetryOn>;
  private readonly statuses: ReadonlySet<number>;
  private readonly counters = new Map<FailureKind, { inc(): void }>();

  constructor(
    readonly service: string,
    config: Readonly<ServicePolicy['retries']>,
    readonly budget: RetryBudget,
  ) {
    this.attempts = config.attempts;
    this.perTryTimeout = config.perTryTimeout;
    this.bufferBodyUpTo = config.bufferBodyUpTo;
    this.hedge = config.hedge;
    this.on = new Set(config.retryOn);
    this.statuses = retriedStatuses(this.on);
  }

  /** Cheap test on the response path: is this status ever retried? */
  retriesStatus(status: number): boolean {
    return this.statuses.has(status);
  }

  /**
   * The decision for a failed attempt. On true a retry budget slot is held: call
   * `budget.retryFinished()` when the retry's attempt ends.
   */
  mayRetry(failure: RetryCandidate): boolean {
    if (failure.clientResponseStarted || failure.tries > this.attempts) return false;
    // A status is listed by its number: `5xx` alone covers 502/503/504 too.
    const listed = failure.status === undefined ? this.on.has(failure.kind) : this.statuses.has(failure.status);
    if (!listed) return false;
    const retriable = isRetriable(
      {
        method: failure.method,
        status: failure.status,
        errorCode: failure.status === undefined ? failure.kind : undefined,
        bytesSentToUpstream: failure.kind === 'connect-failure' ? 0 : 1,
        bodyReplayable: failure.bodyReplayable,
      },
      this.statuses,
    );
    if (!retriable || !this.budget.tryAcquireRetry()) return false;
    this.count(failure.kind);
    return true;
  }

  /**
   * May a try that passed its per-try timeout get a hedge beside it? Idempotent, replayable
   * requests with tries left, within the retry budget (a slot is held as for a retry).
   */
  mayHedge(method: string, tries: number, bodyReplayable: boolean): boolean {
    if (!this.hedge || tries > this.attempts || !bodyReplayable || !isIdempotent(method)) return false;
    if (!this.budget.tryAcquireRetry()) return false;
    hedgesTotal.inc({ service: this.service });
    return true;
  }

  private count(kind: FailureKind): void {
    let child = this.counters.get(kind);
    if (child === undefined) {
      child = retriesTotal.labels(this.service, kind.replace('-', '_'));
      this.counters.set(kind, child);
    }
    child.inc();
  }
}

/** A failed attempt as the retry decision sees it (built only when an attempt failed). */
export interface RetryCandidate {
  kind: FailureKind;
  /** The upstream's status, when the failure is a response. */
  status?: number;
  method: string;
  tries: number;
  bodyReplayable: boolean;
  clientResponseStarted: boolean;
}

/** 502/503/504 for `gateway-error`, every 5xx for `5xx`. */
function retriedStatuses(on: ReadonlySet<RetryOn>): ReadonlySet<number> {
  const statuses = new Set<number>();
  for (let s = 500; s <= 599; s++) if (on.has('5xx') || (on.has('gateway-error') && isGatewayStatus(s))) statuses.add(s);
  return statuses;
}

/** The kind of failure a response status is (only 5xx are failures). */
export function statusFailureKind(status: number): FailureKind {
  return isGatewayStatus(status) ? 'gateway-error' : '5xx';
}

// ---- the rules, apart from any policy -------------------------------------------------

/** Methods that RFC 9110 §9.2.2 defines as idempotent: sending them twice is harmless. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

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
/** What is retried when no policy widens it: the gateway errors. */
const GATEWAY_ERRORS: ReadonlySet<number> = retriedStatuses(new Set<RetryOn>(['gateway-error']));

export function isRetriable(failure: AttemptFailure, retriableStatuses: ReadonlySet<number> = GATEWAY_ERRORS): boolean {
  if (!failure.bodyReplayable) return false;
  const idempotent = isIdempotent(failure.method);
  if (failure.status !== undefined && failure.errorCode === undefined) {
    return idempotent && retriableStatuses.has(failure.status);
  }
  if (failure.errorCode === undefined) return false;
  return failure.bytesSentToUpstream === 0 || idempotent;
}
