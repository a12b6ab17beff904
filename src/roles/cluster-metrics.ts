import { AggregatorRegistry, type Registry } from 'prom-client';

/**
 * One /metrics for `switchboard proxy --workers N`: the primary asks every worker for its
 * registry as JSON and merges them with prom-client's aggregators (counters and histograms
 * are summed; gauges use the aggregator they declare, src/metrics.ts `gauge`).
 *
 * Counters must not go backwards when a worker dies: Prometheus reads any decrease as a
 * reset to 0 and would count the survivors' whole totals again. So the counters and
 * histograms of a worker's last answer are kept as "retired" totals and added to every later
 * scrape. What a worker counted after its last answer is lost with it, but a scrape never
 * shows less than the one before. A worker that does not answer in time contributes its last
 * answer, for the same reason.
 */

/** One sample as `Registry.getMetricsAsJSON()` returns it. */
export interface SampleJson {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** One metric as `Registry.getMetricsAsJSON()` returns it (prom-client types `type` as an enum; it is a string). */
export interface MetricJson {
  name: string;
  help: string;
  type: unknown;
  aggregator: string;
  values: SampleJson[];
}

export type Snapshot = MetricJson[];

/** What ClusterMetrics needs of the worker pool (src/roles/worker-pool.ts). */
export interface MetricsSource {
  /** Every live worker's answer by worker id; undefined for one that did not answer in time. */
  askAll(what: 'metrics', timeoutMs: number): Promise<Map<number, unknown>>;
  onWorkerExit(listener: (workerId: number) => void): void;
}

const ASK_TIMEOUT_MS = 2_000;
const MONOTONIC_TYPES: ReadonlySet<unknown> = new Set(['counter', 'histogram']);

export class ClusterMetrics {
  /** Each live worker's last answer. */
  private readonly last = new Map<number, Snapshot>();
  /** Ids of workers that exited: an answer of theirs still in flight must not count twice. */
  private readonly exited = new Set<number>();
  private retired: Snapshot = [];

  /** `own`: the primary's registry (its process metrics count too). */
  constructor(
    private readonly workers: MetricsSource,
    private readonly own: Registry,
  ) {
    workers.onWorkerExit((id) => this.retire(id));
  }

  /** The Prometheus text exposition of the sum. */
  async render(): Promise<string> {
    const own = (await this.own.getMetricsAsJSON()) as unknown as Snapshot;
    const answers = await this.workers.askAll('metrics', ASK_TIMEOUT_MS);
    // Synchronous from here: a worker's totals are in `current` or in `retired`, never both.
    const current: Snapshot[] = [];
    for (const [id, answer] of answers) {
      if (this.exited.has(id)) continue;
      if (Array.isArray(answer)) this.last.set(id, answer as Snapshot);
      const snapshot = this.last.get(id);
      if (snapshot) current.push(snapshot);
    }
    return AggregatorRegistry.aggregate([own, this.retired, ...current]).metrics();
  }

  private retire(workerId: number): void {
    this.exited.add(workerId);
    const snapshot = this.last.get(workerId);
    this.last.delete(workerId);
    if (snapshot) this.retired = sumSnapshots([this.retired, snapshot.filter((m) => MONOTONIC_TYPES.has(m.type))]);
  }
}

/** Counters and histograms of several snapshots, summed sample by sample. */
export function sumSnapshots(parts: Snapshot[]): Snapshot {
  const byName = new Map<string, { metric: MetricJson; samples: Map<string, SampleJson> }>();
  for (const metric of parts.flat()) {
    let entry = byName.get(metric.name);
    if (!entry) {
      entry = { metric: { ...metric, values: [] }, samples: new Map() };
      byName.set(metric.name, entry);
    }
    for (const sample of metric.values) {
      const key = sampleKey(sample);
      const sum = entry.samples.get(key);
      if (sum) sum.value += sample.value;
      else entry.samples.set(key, { ...sample, labels: { ...sample.labels } });
    }
  }
  return [...byName.values()].map(({ metric, samples }) => ({ ...metric, values: [...samples.values()] }));
}

function sampleKey(sample: SampleJson): string {
  const labels = Object.entries(sample.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([sample.metricName ?? '', labels]);
}
