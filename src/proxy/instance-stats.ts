/**
 * One instance's traffic as this proxy sees it, for the web UI's "why does it (not) get
 * traffic" view: tries and failed tries (5xx answers, and tries that got no usable answer)
 * and their latencies, per report window. `take` closes the window (once a second) and says
 * what happened in it. A histogram of fixed buckets, made on the first try: an idle instance
 * costs two numbers.
 */

/** Upper bounds (ms) of the latency buckets; the last one takes everything slower. */
const BOUNDS = [0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 50, 80, 130, 200, 300, 500, 800, 1300, 2000, 3000, 5000, 8000, 13000, 20000, 30000, 60000, Infinity];

export interface WindowStats {
  /** Tries per second over the window. */
  rps: number;
  /** Share of tries that failed, 0 to 1. */
  errorRate: number;
  /** Latency percentiles in ms (bucket upper bounds; the last bucket reports its lower bound). */
  p50: number;
  p99: number;
}

export class InstanceStats {
  private tries = 0;
  private failures = 0;
  private buckets: Uint32Array | undefined;

  record(ms: number, failed: boolean): void {
    this.tries++;
    if (failed) this.failures++;
    const buckets = (this.buckets ??= new Uint32Array(BOUNDS.length));
    let i = 0;
    while (ms > BOUNDS[i]) i++;
    buckets[i]++;
  }

  /** Closes the window of `elapsedMs`: undefined when nothing was tried in it. */
  take(elapsedMs: number): WindowStats | undefined {
    if (this.tries === 0) return undefined;
    const buckets = this.buckets as Uint32Array;
    const stats: WindowStats = {
      rps: (this.tries * 1000) / Math.max(1, elapsedMs),
      errorRate: this.failures / this.tries,
      p50: percentile(buckets, this.tries, 0.5),
      p99: percentile(buckets, this.tries, 0.99),
    };
    this.tries = 0;
    this.failures = 0;
    buckets.fill(0);
    return stats;
  }
}

function percentile(buckets: Uint32Array, total: number, q: number): number {
  const rank = Math.ceil(total * q);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i];
    if (seen >= rank) return Number.isFinite(BOUNDS[i]) ? BOUNDS[i] : BOUNDS[i - 1];
  }
  return BOUNDS[BOUNDS.length - 2];
}
