import type { ServicePolicy } from '../../config/types';
import client from 'prom-client';
import { registry } from '../../metrics';

/**
 * What a service's successful attempts take, as a decaying histogram: log-spaced buckets from
 * 1 ms to ~65 s whose counts halve every `decay` (old latency fades, a deploy's new normal is
 * learned within seconds), recorded in O(1) per response.
 *
 * It gives the adaptive per-try timeout: max(floor, multiplier × p99) once `minSamples`
 * (decayed) responses were seen, `fallback` before that. An attempt over it is treated as a
 * hang: cancelled and retried elsewhere (idempotent requests only), counted as a gateway
 * failure for outlier detection.
 */
export type AdaptiveTimeoutConfig = ServicePolicy['retries']['adaptiveTimeout'];

/** Bucket i holds latencies up to 2^(i/4) ms: ~19 % apart, 64 buckets reach ~65 s. */
const BUCKETS = 64;
const PER_DOUBLING = 4;

const learned = new Map<string, LatencyTracker>();
const TIMEOUT_GAUGE = 'switchboard_proxy_adaptive_timeout_seconds';

/** Read at scrape time: the learned timeouts are not pushed per request. */
if (!registry.getSingleMetric(TIMEOUT_GAUGE)) {
  new client.Gauge({
    name: TIMEOUT_GAUGE,
    help: "Each service's learned per-try timeout (the fallback until it has enough samples)",
    labelNames: ['service'],
    aggregator: 'max',
    registers: [registry],
    collect(this: client.Gauge<'service'>) {
      this.reset();
      for (const [service, tracker] of learned) this.set({ service }, tracker.timeoutMs() / 1000);
    },
  });
}

export class LatencyTracker {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private decayedAt: number;
  private cachedTimeout = 0;
  private dirty = true;

  constructor(
    readonly service: string,
    private readonly config: Readonly<AdaptiveTimeoutConfig>,
    private readonly now: () => number,
  ) {
    this.decayedAt = now();
    learned.set(service, this);
  }

  record(ms: number): void {
    this.decay();
    const bucket = Math.min(BUCKETS - 1, Math.max(0, Math.ceil(Math.log2(Math.max(ms, 1)) * PER_DOUBLING)));
    this.counts[bucket]++;
    this.total++;
    this.dirty = true;
  }

  /** The per-try timeout to use now (ms). */
  timeoutMs(): number {
    if (!this.dirty) return this.cachedTimeout;
    this.dirty = false;
    const { floor, multiplier, minSamples, fallback } = this.config;
    this.cachedTimeout = this.total < minSamples ? fallback : Math.max(floor, multiplier * this.quantileMs(0.99));
    return this.cachedTimeout;
  }

  /** The service left the catalog. */
  dispose(): void {
    if (learned.get(this.service) === this) learned.delete(this.service);
  }

  /** Upper bound of the bucket holding quantile q. */
  quantileMs(q: number): number {
    const wanted = q * this.total;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= wanted) return 2 ** (i / PER_DOUBLING);
    }
    return 2 ** ((BUCKETS - 1) / PER_DOUBLING);
  }

  private decay(): void {
    const now = this.now();
    const periods = (now - this.decayedAt) / this.config.decay;
    if (periods < 1) return;
    const factor = 0.5 ** Math.floor(periods);
    for (let i = 0; i < BUCKETS; i++) this.counts[i] *= factor;
    this.total *= factor;
    this.decayedAt = now;
    this.dirty = true;
  }
}
