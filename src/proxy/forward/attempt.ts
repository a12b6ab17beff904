import type { RetryOn } from '../../config/types';
import { performance } from 'node:perf_hooks';
import { SwitchboardError } from '../../errors';
import { counter } from '../../metrics';
import type { Upstream } from '../upstream';
import { invalidStatusLine, isInformational } from './response-head';
import { classifyTransportError, type OutgoingRequest, type TransportHandler } from './transport';

/**
 * One try of a request on one upstream: the innermost wrapper, right above the transport.
 * It owns the try's timer (the per-try timeout, or what is left of the overall response
 * deadline), holds the upstream's in-flight count for exactly as long as the try lasts,
 * refuses a response head that cannot be relayed (`invalid-response`: the connection is
 * destroyed, never pooled), and turns the transport's errors into an `AttemptFailure`.
 *
 * Events go up to its handler (passive-health.ts → retry.ts → dispatch.ts). After the try
 * is settled — completed, failed, or cancelled from above — nothing more is reported.
 * Nothing thrown above it escapes into the transport: it comes back as an `internal` failure.
 */

export type FailureKind = RetryOn | 'invalid-response' | 'internal';

export interface AttemptFailure {
  readonly kind: FailureKind;
  readonly error: SwitchboardError;
  /** The overall response deadline passed: no retry, whatever the policy. */
  readonly deadline: boolean;
  /** The response head had been passed up: the client may already have part of it. */
  readonly midBody: boolean;
}

/** What hears about one attempt. */
export interface AttemptHandler {
  /** A final response head. false: not wanted (a retry follows), and the attempt drains it. */
  onAttemptHeaders(attempt: Attempt, status: number, statusText: string, rawHeaders: Buffer[]): boolean;
  /** false: the client is not keeping up; `attempt.resume()` once it has drained. */
  onAttemptData(attempt: Attempt, chunk: Buffer): boolean;
  onAttemptEnd(attempt: Attempt): void;
  onAttemptError(attempt: Attempt, failure: AttemptFailure): void;
}

const hungTotal = counter('switchboard_proxy_hung_attempts_total', 'Tries cancelled at their per-try (or adaptive) timeout after the request was sent', ['service']);

/** Passed to the transport's abort when we give a try up: recognised, never reported. */
const CANCELLED = new SwitchboardError('upstream_unreachable', 'attempt cancelled by the proxy');

export class Attempt implements TransportHandler {
  private abortRequest: ((err?: Error) => void) | undefined = undefined;
  private resumeResponse: (() => void) | undefined = undefined;
  /** The transport was about to write the request: it may have reached the upstream. */
  private written = false;
  private headed = false;
  private discarding = false;
  private settled = false;
  private timer: NodeJS.Timeout | undefined = undefined;
  /** performance.now() when the try was sent. */
  startedAt = 0;

  constructor(
    readonly upstream: Upstream,
    private readonly handler: AttemptHandler,
    readonly service: string,
    /** Time to the response head for this try. */
    private readonly timeoutMs: number,
    /** The timer is the exchange's overall deadline, not a per-try timeout. */
    private readonly isDeadline: boolean,
  ) {}

  send(request: OutgoingRequest): void {
    this.startedAt = performance.now();
    this.upstream.acquire();
    this.timer = setTimeout(onAttemptTimeout, this.timeoutMs, this);
    this.upstream.connections.send(request, this);
  }

  /** Given up from above (the client left, or its response was refused): nothing more is reported. */
  cancel(): void {
    if (this.settle()) this.abortRequest?.(CANCELLED);
  }

  /**
   * A hedged try raced this one and answered first: this try ends as if its per-try timeout
   * had fired (counted as hung, reported to passive health as a timeout).
   */
  abandonAsHung(): void {
    if (this.settled) return;
    hungTotal.inc({ service: this.service });
    this.fail('timeout', new SwitchboardError('upstream_timeout', `service "${this.service}": upstream was slower than a hedged try`));
  }

  /** The client drained: let the upstream's body flow again. */
  resume(): void {
    if (!this.settled) this.resumeResponse?.();
  }

  // ---- the transport's callbacks ---------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    if (this.settled) {
      abort(CANCELLED);
      return;
    }
    this.abortRequest = abort;
    this.written = true;
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.settled || this.discarding) return true;
    if (isInformational(status)) return true;
    this.clearTimer();
    const invalid = invalidStatusLine(status, statusText);
    if (invalid !== undefined) {
      this.fail('invalid-response', invalidResponse(this.service, invalid));
      return false;
    }
    this.resumeResponse = resume;
    this.headed = true;
    try {
      if (!this.handler.onAttemptHeaders(this, status, statusText, rawHeaders)) this.discarding = true;
    } catch (err) {
      this.fail('internal', internalError(err));
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.settled || this.discarding) return true;
    try {
      return this.handler.onAttemptData(this, chunk);
    } catch (err) {
      this.fail('internal', internalError(err));
      return false;
    }
  }

  onComplete(): void {
    if (!this.settle() || this.discarding) return;
    try {
      this.handler.onAttemptEnd(this);
    } catch (err) {
      this.report('internal', internalError(err));
    }
  }

  onError(err: Error): void {
    if (err === CANCELLED || this.settled) return;
    const { kind, code } = classifyTransportError(err, this.written);
    if (kind === 'reset') this.upstream.resetConnections();
    if (this.discarding) {
      this.settle();
      return;
    }
    const error =
      kind === 'invalid-response'
        ? invalidResponse(this.service, `the response could not be parsed (${code})`, err)
        : new SwitchboardError(kind === 'timeout' ? 'upstream_timeout' : 'upstream_unreachable', `service "${this.service}": upstream failed (${code})`, { cause: err });
    this.fail(kind, error);
  }

  /** The per-try timeout or the overall deadline fired before the response head. */
  timedOut(): void {
    this.timer = undefined;
    if (this.settled) return;
    if (!this.isDeadline && this.written) hungTotal.inc({ service: this.service });
    const what = this.written ? 'respond' : 'accept the request';
    const error = new SwitchboardError('upstream_timeout', `service "${this.service}": upstream did not ${what} within ${this.timeoutMs} ms`);
    this.fail(this.written ? 'timeout' : 'connect-failure', error, this.isDeadline);
  }

  // ---- settling ---------------------------------------------------------------------------

  /** Ends the try (once): timer cleared, upstream released. False if it had ended already. */
  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.clearTimer();
    this.upstream.release();
    return true;
  }

  /** Ends the try with a failure: the connection is destroyed, the failure reported. */
  private fail(kind: FailureKind, error: SwitchboardError, deadline = false): void {
    if (!this.settle()) return;
    this.abortRequest?.(CANCELLED);
    this.report(kind, error, deadline);
  }

  private report(kind: FailureKind, error: SwitchboardError, deadline = false): void {
    const failure: AttemptFailure = { kind, error, deadline, midBody: this.headed };
    try {
      this.handler.onAttemptError(this, failure);
    } catch {
      // The chain above failed while handling a failure: the client's connection closing
      // still ends the exchange; the transport must not see our exception.
    }
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function onAttemptTimeout(attempt: Attempt): void {
  attempt.timedOut();
}

export function invalidResponse(service: string, reason: string, cause?: unknown): SwitchboardError {
  return new SwitchboardError('upstream_invalid_response', `service "${service}": the upstream's response cannot be relayed: ${reason}`, { cause });
}

export function internalError(cause: unknown): SwitchboardError {
  return new SwitchboardError('internal_error', 'the proxy failed while handling this request', { cause });
}
