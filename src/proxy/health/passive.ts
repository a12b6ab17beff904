import { isGatewayStatus } from '../gateway-status';
import type { OutlierDetector, RequestOutcome } from './outlier-detector';

/**
 * Passive health accounting: every attempt's outcome — the upstream's status, or a failure
 * to get one (refused, reset, timed out) — goes to the service's OutlierDetector, retried
 * attempts included. Attempts the client abandoned are not counted: they say nothing about
 * the upstream.
 */
export class PassiveHealth {
  /** Both thresholds 0: nothing could ever be ejected, so skip the bookkeeping. */
  private readonly enabled: boolean;

  constructor(private readonly detector: OutlierDetector) {
    this.enabled = detector.config.consecutive5xx > 0 || detector.config.consecutiveGatewayFailure > 0;
  }

  response(upstreamId: string, status: number): void {
    if (this.enabled) this.detector.record(upstreamId, outcomeOfStatus(status));
  }

  failure(upstreamId: string): void {
    if (this.enabled) this.detector.record(upstreamId, 'gateway_failure');
  }
}

/** classifyOutcome for a status, without building an object per request. */
export function outcomeOfStatus(status: number): RequestOutcome {
  if (status < 500) return 'success';
  return isGatewayStatus(status) ? 'gateway_failure' : 'http_5xx';
}
