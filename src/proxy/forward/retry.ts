import { performance } from 'node:perf_hooks';
import { SwitchboardError } from '../../errors';
import { counter } from '../../metrics';
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

const hedgesWonTotal = counter('switchboard_proxy_hedges_won_total', 'Hedged tries whose answer came first (the slow try they raced was cancelled).', ['service']);

export class RetryHandler implements AttemptHandler {
  /** Tries made so far (1 = no retry). */
  tries = 0;
  /** Tries in flight: one, or several while hedged tries race. */
  private readonly live: Attempt[] = [];
  /** The try whose response is being relayed. */
  private answering: Attempt | undefined = undefined;
  private tried: Upstream[] | undefined = undefined;
  /** The try that holds the retry budget slot, if any. */
  private slotHolder: Attempt | undefined = undefined;
  /** A slot granted by the policy that the next try will hold. */
  private slotGranted = false;
  /** Tries started as hedges (to count the ones that win). */
  private hedges: Attempt[] | undefined = undefined;
  /** The learned timeout or the hedge point of the newest try. */
  private slowTimer: NodeJS.Timeout | undefined = undefined;
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
    this.health = new PassiveHealthHandler(service, this);
  }

  /** Picks an upstream (not one tried before, while there are others) and sends a try to it. */
  start(previousFailure?: SwitchboardError): void {
    const upstream = this.service.pick(this.pickRequest, this.tried);
    if (upstream === undefined) {
      this.releaseGrantedSlot();
      this.next.onNoUpstream(previousFailure ?? new SwitchboardError('no_healthy_upstream', `service "${this.service.name}" has no healthy instance`));
      return;
    }
    this.send(upstream);
  }

  private send(upstream: Upstream): Attempt {
    this.tries++;
    const perTry = this.perTryTimeout();
    const left = this.responseMs - (performance.now() - this.startedAt);
    const timed = perTry > 0 && perTry < left;
    const hedged = timed && this.mayHedgeLater();
    // A configured perTryTimeout fails the try when it fires (Envoy's). A learned one, or a
    // hedge, only acts if it can do better than wait: the try itself waits for the deadline.
    const strict = timed && !hedged && this.service.retry.perTryTimeout > 0;
    const attempt = new Attempt(upstream, this.health, this.service.name, Math.max(1, strict ? perTry : left), !strict);
    this.live.push(attempt);
    if (this.slotGranted) {
      this.slotGranted = false;
      this.slotHolder = attempt;
    }
    if (timed && !strict) this.armSlowTimer(attempt, perTry, hedged);
    attempt.send(this.request);
    return attempt;
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

  /** Whether a try started now could get a hedge beside it (the budget is asked only then). */
  private mayHedgeLater(): boolean {
    return this.service.retry.hedge && this.tries <= this.service.retry.attempts && isIdempotent(this.request.method) && !(this.request.body instanceof StreamedBody);
  }

  private armSlowTimer(attempt: Attempt, afterMs: number, hedged: boolean): void {
    this.clearSlowTimer();
    this.slowTimer = setTimeout(() => {
      this.slowTimer = undefined;
      if (!this.live.includes(attempt)) return;
      if (hedged) this.hedge(attempt);
      else this.replaceHung(attempt);
    }, afterMs);
  }

  /**
   * `slow` passed the learned timeout: it is a hang if another try may replace it (the retry
   * policy and budget allow one) — cancelled, counted as hung, retried elsewhere. If not, it
   * keeps its chance: a slow answer beats an error.
   */
  private replaceHung(slow: Attempt): void {
    this.ended(slow);
    if (!this.mayRetry('timeout', undefined)) {
      this.live.push(slow);
      return;
    }
    slow.abandonAsHung();
    this.retry(slow, new SwitchboardError('upstream_timeout', `service "${this.service.name}": upstream did not answer within the learned timeout`));
  }

  /** `slow` passed its per-try timeout without an answer: race a try on another instance. */
  private hedge(slow: Attempt): void {
    if (!this.service.retry.mayHedge(this.request.method, this.tries, true)) return;
    (this.tried ??= []).push(slow.upstream);
    const upstream = this.service.pick(this.pickRequest, this.tried);
    if (upstream === undefined || upstream === slow.upstream) {
      this.service.budget.retryFinished();
      return;
    }
    this.slotGranted = true;
    (this.hedges ??= []).push(this.send(upstream));
  }

  /** The exchange is over: the tries in flight are abandoned, the budget slot returned. */
  close(): void {
    this.clearSlowTimer();
    for (const attempt of this.live.splice(0)) attempt.cancel();
    this.answering?.cancel();
    this.answering = undefined;
    this.releaseSlot();
    this.releaseGrantedSlot();
  }

  onAttemptHeaders(attempt: Attempt, status: number, statusText: string, rawHeaders: Buffer[]): boolean {
    this.ended(attempt);
    if (status >= 500 && this.service.retry.retriesStatus(status)) {
      // A racing try may still answer well: this one is dropped, nothing else is started.
      if (this.live.length > 0) return false;
      if (this.mayRetry(statusFailureKind(status), status)) {
        this.retry(attempt, new SwitchboardError('upstream_unreachable', `service "${this.service.name}": upstream answered ${status}`));
        return false;
      }
    }
    this.won(attempt);
    return this.next.onAttemptHeaders(attempt, status, statusText, rawHeaders);
  }

  onAttemptData(attempt: Attempt, chunk: Buffer): boolean {
    return this.next.onAttemptData(attempt, chunk);
  }

  onAttemptEnd(attempt: Attempt): void {
    this.answering = undefined;
    this.next.onAttemptEnd(attempt);
  }

  onAttemptError(attempt: Attempt, failure: AttemptFailure): void {
    if (failure.midBody) {
      this.answering = undefined;
      this.next.onAttemptError(attempt, failure);
      return;
    }
    // A try that lost a race was already given up: its failure is nobody's news.
    if (!this.live.includes(attempt)) return;
    this.ended(attempt);
    if (this.live.length > 0) return;
    if (!failure.deadline && isRetriableKind(failure.kind) && this.mayRetry(failure.kind, undefined)) {
      this.retry(attempt, failure.error);
      return;
    }
    this.next.onAttemptError(attempt, failure);
  }

  /** `winner`'s answer goes to the client: every other try in flight is given up as hung. */
  private won(winner: Attempt): void {
    this.clearSlowTimer();
    this.answering = winner;
    if (this.hedges?.includes(winner)) hedgesWonTotal.inc({ service: this.service.name });
    for (const loser of this.live.splice(0)) loser.abandonAsHung();
  }

  /** `attempt` produced a response head or failed: it is no longer in flight. */
  private ended(attempt: Attempt): void {
    const at = this.live.indexOf(attempt);
    if (at >= 0) this.live.splice(at, 1);
    if (this.live.length === 0) this.clearSlowTimer();
    if (attempt === this.slotHolder) this.releaseSlot();
  }

  private mayRetry(kind: Exclude<FailureKind, 'invalid-response' | 'internal'>, status: number | undefined): boolean {
    const policy = this.service.retry;
    if (policy.attempts === 0) return false;
    const body = this.request.body;
    this.slotGranted = policy.mayRetry({
      kind,
      status,
      method: this.request.method,
      tries: this.tries,
      bodyReplayable: !(body instanceof StreamedBody && body.started),
      clientResponseStarted: false,
    });
    return this.slotGranted;
  }

  private retry(failed: Attempt, failure: SwitchboardError): void {
    (this.tried ??= []).push(failed.upstream);
    this.start(failure);
  }

  /** A retry's try has ended (or the exchange has): its budget slot goes back. */
  private releaseSlot(): void {
    if (this.slotHolder === undefined) return;
    this.slotHolder = undefined;
    this.service.budget.retryFinished();
  }

  /** A slot granted for a try that was never sent. */
  private releaseGrantedSlot(): void {
    if (!this.slotGranted) return;
    this.slotGranted = false;
    this.service.budget.retryFinished();
  }

  private clearSlowTimer(): void {
    if (this.slowTimer === undefined) return;
    clearTimeout(this.slowTimer);
    this.slowTimer = undefined;
  }
}

function isRetriableKind(kind: FailureKind): kind is Exclude<FailureKind, 'invalid-response' | 'internal'> {
  return kind !== 'invalid-response' && kind !== 'internal';
}
