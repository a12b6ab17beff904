/**
 * Every size, count and duration the harness uses, in one place. The full run is sized for
 * about ten minutes on a 2-core machine; `--quick` for a few hundred requests per peer.
 */

/** A load run is bounded by a request count or a duration, never both. */
export type RunBound = { requests: number } | { durationMs: number };

export interface BenchSettings {
  quick: boolean;
  /** Small GETs: connection counts, interleaved rounds, and how long each run is. */
  small: { concurrencies: number[]; rounds: number; run: RunBound; warmupRequests: number };
  /** CPU per request: fixed request count per run, interleaved rounds. */
  cpu: { requests: number; connections: number; rounds: number };
  /** 1 MiB download and upload: interleaved rounds like the small GETs. */
  large: { run: RunBound; connections: number; rounds: number };
  churn: {
    durationMs: number;
    connections: number;
    /** Instances registered at any time (at least 2, so the service never empties). */
    instances: number;
    /** One register + one deregister this often. */
    intervalMs: number;
    /** Requests arriving later than this after the deregistration ack count as stale. */
    allowanceMs: number;
    /** A deregistered instance keeps serving this long (graceful shutdown) before closing. */
    drainMs: number;
  };
  propagation: {
    registrations: number;
    timeoutMs: number;
    /**
     * Pause between two polls of one proxy. Back-to-back polls of two proxies keep both cores
     * of a small machine busy with the polls and measure mostly CPU contention; 1 ms costs
     * at most ~1 ms of resolution. The same in every mode, so the rows compare.
     */
    pollGapMs: number;
  };
  /** Slow and hung instances: the fault runs `faultMs`; "settled" counts from `settleMs` in. */
  slow: { connections: number; baseDelayMs: number; slowFactor: number; beforeMs: number; faultMs: number; settleMs: number };
  /** Distributed mode: kill -9 the leader registry, time until a survivor leads. */
  failover: { trials: number; timeoutMs: number };
  scale: {
    services: number;
    instances: number;
    /** Concurrent registration PUTs. */
    concurrency: number;
    /** Stop registering after this long and report how far we got. */
    budgetMs: number;
    cpuRequests: number;
    /** How long a proxy role's RSS is watched after it synced the catalog (its sync's garbage goes). */
    proxySettleMs: number;
    /**
     * How long the filled process's RSS is watched, idle, after the fill: V8's memory reducer
     * compacts the heap once allocation has stayed low for a while (~50 s after 100k registrations).
     */
    fillSettleMs: number;
  };
}

export function fullSettings(): BenchSettings {
  return {
    quick: false,
    small: { concurrencies: [8, 32, 128], rounds: 3, run: { durationMs: 4000 }, warmupRequests: 5000 },
    cpu: { requests: 20_000, connections: 32, rounds: 3 },
    large: { run: { durationMs: 4000 }, connections: 8, rounds: 3 },
    churn: { durationMs: 20_000, connections: 16, instances: 4, intervalMs: 200, allowanceMs: 200, drainMs: 1000 },
    propagation: { registrations: 200, timeoutMs: 5000, pollGapMs: 1 },
    slow: { connections: 8, baseDelayMs: 2, slowFactor: 20, beforeMs: 3000, faultMs: 10_000, settleMs: 5000 },
    failover: { trials: 3, timeoutMs: 30_000 },
    scale: { services: 10_000, instances: 100_000, concurrency: 64, budgetMs: 240_000, cpuRequests: 20_000, proxySettleMs: 20_000, fillSettleMs: 90_000 },
  };
}

export function quickSettings(): BenchSettings {
  return {
    quick: true,
    small: { concurrencies: [8], rounds: 2, run: { requests: 200 }, warmupRequests: 50 },
    cpu: { requests: 300, connections: 8, rounds: 1 },
    large: { run: { requests: 20 }, connections: 4, rounds: 1 },
    churn: { durationMs: 3000, connections: 4, instances: 3, intervalMs: 200, allowanceMs: 200, drainMs: 500 },
    propagation: { registrations: 20, timeoutMs: 5000, pollGapMs: 1 },
    slow: { connections: 4, baseDelayMs: 2, slowFactor: 20, beforeMs: 1000, faultMs: 3000, settleMs: 1500 },
    failover: { trials: 1, timeoutMs: 30_000 },
    scale: { services: 100, instances: 1000, concurrency: 32, budgetMs: 30_000, cpuRequests: 300, proxySettleMs: 2_000, fillSettleMs: 2_000 },
  };
}

/** `--duration S` replaces the length of every duration-bound run. */
export function withDuration(settings: BenchSettings, seconds: number): BenchSettings {
  const run: RunBound = { durationMs: seconds * 1000 };
  return { ...settings, small: { ...settings.small, run }, large: { ...settings.large, run } };
}

/**
 * `--rounds N` replaces the number of interleaved rounds of the small-GET, CPU and 1 MiB
 * scenarios: more rounds narrow the median when the difference sought (a feature's cost) is a
 * few percent.
 */
export function withRounds(settings: BenchSettings, rounds: number): BenchSettings {
  return { ...settings, small: { ...settings.small, rounds }, cpu: { ...settings.cpu, rounds }, large: { ...settings.large, rounds } };
}

/**
 * `--huge`: the scale scenario with 1,000,000 instances over 100,000 services — what breaks
 * first past the 100,000 the full run uses (bench/README.md). About 4–6 minutes of registering.
 */
export function withHugeCatalog(settings: BenchSettings): BenchSettings {
  return { ...settings, scale: { ...settings.scale, services: 100_000, instances: 1_000_000, budgetMs: 900_000 } };
}
