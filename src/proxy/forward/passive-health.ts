import { performance } from 'node:perf_hooks';
import type { Service } from '../service';
import type { Attempt, AttemptFailure, AttemptHandler } from './attempt';

/**
 * Passive health accounting as a wrapper: every attempt's outcome — the upstream's status,
 * or a failure to get a usable one (refused, reset, timed out, invalid) — reaches the
 * service's outlier detector before the retry decision, retried attempts included. The time
 * of every healthy answer goes to the service's latency tracker (the adaptive per-try
 * timeout) and the upstream's latency average (latency-aware weights); a try that timed out
 * counts there at what it cost. Tries the proxy gave up itself (the client left) and our own
 * internal failures say nothing about the upstream and are not counted.
 */
export class PassiveHealthHandler implements AttemptHandler {
  constructor(
    private readonly service: Service,
    private readonly next: AttemptHandler,
  ) {}

  onAttemptHeaders(attempt: Attempt, status: number, statusText: string, rawHeaders: Buffer[]): boolean {
    this.service.passive.response(attempt.upstream.id, status);
    const ms = performance.now() - attempt.startedAt;
    attempt.upstream.stats.record(ms, status >= 500);
    // Only answers that count as healthy teach what "normal" takes: a fast 500 is no merit.
    if (status < 500) this.service.observeLatency(attempt.upstream, ms, true);
    return this.next.onAttemptHeaders(attempt, status, statusText, rawHeaders);
  }

  onAttemptData(attempt: Attempt, chunk: Buffer): boolean {
    return this.next.onAttemptData(attempt, chunk);
  }

  onAttemptEnd(attempt: Attempt): void {
    this.next.onAttemptEnd(attempt);
  }

  onAttemptError(attempt: Attempt, failure: AttemptFailure): void {
    if (failure.kind !== 'internal') {
      const ms = performance.now() - attempt.startedAt;
      this.service.passive.failure(attempt.upstream.id);
      attempt.upstream.stats.record(ms, true);
      if (failure.kind === 'timeout') this.service.observeLatency(attempt.upstream, ms, false);
    }
    this.next.onAttemptError(attempt, failure);
  }
}
