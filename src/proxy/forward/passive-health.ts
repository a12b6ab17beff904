import { performance } from 'node:perf_hooks';
import type { LatencyTracker } from '../health/latency';
import type { PassiveHealth } from '../health/passive';
import type { Attempt, AttemptFailure, AttemptHandler } from './attempt';

/**
 * Passive health accounting as a wrapper: every attempt's outcome — the upstream's status,
 * or a failure to get a usable one (refused, reset, timed out, invalid) — reaches the
 * service's outlier detector before the retry decision, retried attempts included, and the
 * time of every healthy answer to its latency tracker (the adaptive per-try timeout). Tries
 * the proxy gave up itself (the client left) and our own internal failures say nothing
 * about the upstream and are not counted.
 */
export class PassiveHealthHandler implements AttemptHandler {
  constructor(
    private readonly health: PassiveHealth,
    private readonly latency: LatencyTracker,
    private readonly next: AttemptHandler,
  ) {}

  onAttemptHeaders(attempt: Attempt, status: number, statusText: string, rawHeaders: Buffer[]): boolean {
    this.health.response(attempt.upstream.id, status);
    // Only answers that count as healthy teach the service what "normal" takes.
    if (status < 500) this.latency.record(performance.now() - attempt.startedAt);
    return this.next.onAttemptHeaders(attempt, status, statusText, rawHeaders);
  }

  onAttemptData(attempt: Attempt, chunk: Buffer): boolean {
    return this.next.onAttemptData(attempt, chunk);
  }

  onAttemptEnd(attempt: Attempt): void {
    this.next.onAttemptEnd(attempt);
  }

  onAttemptError(attempt: Attempt, failure: AttemptFailure): void {
    if (failure.kind !== 'internal') this.health.failure(attempt.upstream.id);
    this.next.onAttemptError(attempt, failure);
  }
}
