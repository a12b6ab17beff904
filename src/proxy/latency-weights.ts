import type { ServicePolicy } from '../config/types';
import type { Upstream } from './upstream';

/**
 * Latency-aware weights: an instance that answers correctly but much slower than its peers
 * gets a share of traffic that shrinks with how much slower it is, whatever the balancer
 * reads weights (round robin, random, least-request). The yardstick is the service's median
 * instance, so a backend-wide slowdown changes nobody's share, and one fast outlier does not
 * make every other instance look slow.
 *
 *   allowed = tolerance × median + NOISE_MS
 *   factor  = 1 when estimate ≤ allowed, else max(minWeightPercent / 100, (allowed / estimate)³)
 *
 * Cubed because the service's p99 is what clients feel: an instance 20× slower than its peers
 * must get well under 1 % of the requests for p99 to stay near the healthy one. A linear
 * penalty still gave it ~5 % of a three-instance service, a squared one ~1.5 % under load
 * (the fast instances' own latency rises with load, and with it `allowed`): both over 1 %.
 */
export type LatencyAwareConfig = ServicePolicy['latencyAware'];

/** Below a couple of milliseconds, differences between instances are scheduling noise. */
export const NOISE_MS = 2;

/** Answers an instance must have given before its latency can cost it weight. */
export const MIN_SAMPLES_TO_JUDGE = 10;

/** Answers an instance must have given before the latency outlier rule judges it. */
export const MIN_SAMPLES_TO_EJECT = 20;

export interface LatencyVerdicts {
  /** Instances at least `slowFactor` × the median's latency (the latency outlier rule). */
  slow: Upstream[];
}

/**
 * Sets every upstream's `latencyFactor` (and weight) from their latency estimates; returns
 * the ones the latency outlier rule would eject (`slowFactor` > 0).
 */
export function applyLatencyWeights(upstreams: readonly Upstream[], config: Readonly<LatencyAwareConfig>, slowFactor: number): LatencyVerdicts {
  const verdicts: LatencyVerdicts = { slow: [] };
  const median = medianEstimate(upstreams);
  for (const u of upstreams) {
    const estimate = u.latency.estimate;
    let factor = 1;
    if (median !== undefined && estimate !== undefined && u.available() && u.latency.samples >= MIN_SAMPLES_TO_JUDGE) {
      if (config.enabled) factor = weightFactor(estimate, median, config);
      if (slowFactor > 0 && u.latency.samples >= MIN_SAMPLES_TO_EJECT && estimate >= slowFactor * median + NOISE_MS) verdicts.slow.push(u);
    }
    if (factor !== u.latencyFactor) {
      u.latencyFactor = factor;
      u.refreshWeight();
    }
  }
  return verdicts;
}

export function weightFactor(estimate: number, median: number, config: Readonly<LatencyAwareConfig>): number {
  const allowed = config.tolerance * median + NOISE_MS;
  if (estimate <= allowed) return 1;
  const ratio = allowed / estimate;
  return Math.max(config.minWeightPercent / 100, ratio * ratio * ratio);
}

/** The lower median of the judged upstreams' estimates; undefined with fewer than two. */
function medianEstimate(upstreams: readonly Upstream[]): number | undefined {
  const estimates: number[] = [];
  for (const u of upstreams) {
    const estimate = u.latency.estimate;
    if (estimate !== undefined && u.available() && u.latency.samples >= MIN_SAMPLES_TO_JUDGE) estimates.push(estimate);
  }
  if (estimates.length < 2) return undefined;
  estimates.sort((a, b) => a - b);
  return estimates[(estimates.length - 1) >> 1];
}
