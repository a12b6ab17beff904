import { performance } from 'node:perf_hooks';

/**
 * A token bucket per key (a client address, a token's hash): `perSecond` refill, `burst`
 * capacity. The map is bounded: past `maxKeys` the buckets that have refilled (idle clients)
 * are swept, and if every key is busy the map starts over — forgetting a few clients' debts
 * costs less than letting spoofed source addresses grow it without end.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token for `key`: 0 when there was one, else the seconds until there will be. */
  take(key: string): number {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    if (bucket.tokens < 1) {
      this.buckets.set(key, bucket);
      return (1 - bucket.tokens) / this.perSecond;
    }
    bucket.tokens -= 1;
    this.remember(key, bucket, now);
    return 0;
  }

  get size(): number {
    return this.buckets.size;
  }

  private remember(key: string, bucket: { tokens: number; at: number }, now: number): void {
    if (!this.buckets.has(key) && this.buckets.size >= this.maxKeys) {
      for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(k);
      if (this.buckets.size >= this.maxKeys) this.buckets.clear();
    }
    this.buckets.set(key, bucket);
  }
}
