import { performance } from 'node:perf_hooks';
import { SwitchboardError } from '../../errors';
import type { PickRequest } from '../balancers/balancer';
import { isIdempotent, statusFailureKind } from '../retry-policy';
import type { Service } from '../service';
import type { Upstream } from '../upstream';
import { Attempt, type AttemptFailure, type AttemptHandler, type FailureKind } from './attempt';
import { StreamedBody } from './body';
import { PassiveHealthHandler } from './passive-health';
import type { OutgoingRequest } from './transport';

/**
 * The retry wrapper: picks an upstream for each try (another one on a retry), and after a
 * failed try asks the service's RetryPolicy (retry-policy.ts) whether the client can be
 * spared the failure. It owns the retry budget slot: taken by the policy when a retry is
 * allowed, given back here when that retry's try ends, or when the exchange does — nobody
 * else releases it. Each try goes through passive health accounting first.
 *
 * Never retried: a failure after the response head was passed on, an invalid response (the
 * upstream would see the request again), an internal failure, or the overall deadline.
 */

/** The exchange above the retries: it also hears that no upstream could be picked. */
export interface ForwardHandler extends AttemptHandler {
  onNoUpstream(error: SwitchboardError): void;
}

export class RetryHandler implements AttemptHandler {
  /** Tries made so far (1 = no retry). */
  tries = 0;
  private current: Attempt | undefined = undefined;
  private tried: Upstream[] | undefined = undefined;
  private holdsSlot = false;
  private readonly health: PassiveHealthHandler;

  constructor(
    private readonly service: Service,
    private readonly request: OutgoingRequest,
    private readonly pickRequest: PickRequest,
    private readonly next: ForwardHandler,
    private readonly startedAt: number,
    /** Overall time to the response head, retries included. */
    private readonly responseMs: number,
  ) {
    this.health = new PassiveHealthHandler(service.passive, service.latency, this);
  }

  /** Picks an upstream (not one tried before, while there are others) and sends a try to it. */
  start(previousFailure?: SwitchboardError): void {
    const upstream = this.service.pick(this.pickRequest, this.tried);
    if (upstream === undefined) {
      this.endRetry();
      this.next.onNoUpstream(previousFailure ?? new SwitchboardError('no_healthy_upstream', `service "${this.service.name}" has no healthy instance`));
      return;
    }
    this.tries++;
    const perTry = this.perTryTimeout();
    const left = this.responseMs - (performance.now() - this.startedAt);
    const isDeadline = !(perTry > 0 && perTry < left);
    const attempt = new Attempt(upstream, this.health, this.service.name, Math.max(1, isDeadline ? left : perTry), isDeadline);
    this.current = attempt;
    attempt.send(this.request);
  }

  /**
   * The configured perTryTimeout; without one, the adaptive timeout the service learned — but
   * only where a hang can be retried: an idempotent request whose body can be sent again, and
   * not on its last allowed try. Anything else waits for the overall deadline rather than fail
   * early: a request that is slow for its own reasons (a rare heavy endpoint) is then slower,
   * not lost.
   */
  private perTryTimeout(): number {
    const configured = this.service.retry.perTryTimeout;
    if (configured > 0) return configured;
    const lastTry = this.tries > this.service.retry.attempts;
    if (lastTry || !this.service.policy.retries.adaptiveTimeout.enabled || !isIdempotent(this.request.method) || this.request.body instanceof StreamedBody) return 0;
    return this.service.latency.timeoutMs();
  }

  /** The exchange is over: the try in flight is abandoned, the budget slot returned. */
  close(): void {
    const attempt = this.current;
    this.current = undefined;
    attempt?.cancel();
    this.endRetry();
  }

  onAttemptHeaders(attempt: Attempt, status: number, statusText: string, rawHeaders: Buffer[]): boolean {
    this.endRetry();
    if (status >= 500 && this.service.retry.retriesStatus(status) && this.mayRetry(statusFailureKind(status), status)) {
      this.retry(attempt, new SwitchboardError('upstream_unreachable', `service "${this.service.name}": upstream answered ${status}`));
      return false;
    }
    return this.next.onAttemptHeaders(attempt, status, statusText, rawHeaders);
  }

  onAttemptData(attempt: Attempt, chunk: Buffer): boolean {
    return this.next.onAttemptData(attempt, chunk);
  }

  onAttemptEnd(attempt: Attempt): void {
    this.current = undefined;
    this.next.onAttemptEnd(attempt);
  }

  onAttemptError(attempt: Attempt, failure: AttemptFailure): void {
    this.endRetry();
    if (!failure.midBody && !failure.deadline && isRetriableKind(failure.kind) && this.mayRetry(failure.kind, undefined)) {
      this.retry(attempt, failure.error);
      return;
    }
    this.current = undefined;
    this.next.onAttemptError(attempt, failure);
  }

  private mayRetry(kind: Exclude<FailureKind, 'invalid-response' | 'internal'>, status: number | undefined): boolean {
    const policy = this.service.retry;
    if (policy.attempts === 0) return false;
    const body = this.request.body;
    this.holdsSlot = policy.mayRetry({
      kind,
      status,
      method: this.request.method,
      tries: this.tries,
      bodyReplayable: !(body instanceof StreamedBody && body.started),
      clientResponseStarted: false,
    });
    return this.holdsSlot;
  }

  private retry(failed: Attempt, failure: SwitchboardError): void {
    (this.tried ??= []).push(failed.upstream);
    this.start(failure);
  }

  /** A retry's try has ended (or the exchange has): its budget slot goes back. */
  private endRetry(): void {
    if (!this.holdsSlot) return;
    this.holdsSlot = false;
    this.service.budget.retryFinished();
  }
}

function isRetriableKind(kind: FailureKind): kind is Exclude<FailureKind, 'invalid-response' | 'internal'> {
  return kind !== 'invalid-response' && kind !== 'internal';
}
