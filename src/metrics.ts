import client from 'prom-client';

/**
 * One prom-client registry per process. Modules declare their metrics through these
 * helpers, which return the already-registered metric when called again (tests create many
 * registries and proxies in one process). Names follow Prometheus conventions:
 * switchboard_<area>_<thing>_total, _seconds; labels are bounded (service, code class).
 */
export const registry = new client.Registry();

let defaultsCollected = false;

/** Process metrics (CPU, RSS, event loop lag, GC): once per process. */
export function collectProcessMetrics(): void {
  if (defaultsCollected) return;
  defaultsCollected = true;
  client.collectDefaultMetrics({ register: registry });
}

export function counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): client.Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as client.Counter<L>;
  return new client.Counter<L>({ name, help, labelNames: [...labelNames], registers: [registry] });
}

/**
 * `aggregator`: how `switchboard proxy --workers N` merges the workers' values into one
 * /metrics (src/roles/cluster-metrics.ts). Our gauges report a state (a revision, a 0/1
 * flag), so the default is the highest value, where prom-client's own default would sum them.
 */
export function gauge<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[] = [],
  aggregator: client.Aggregator = 'max',
): client.Gauge<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as client.Gauge<L>;
  return new client.Gauge<L>({ name, help, labelNames: [...labelNames], aggregator, registers: [registry] });
}

export function histogram<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[] = [],
  buckets: number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
): client.Histogram<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as client.Histogram<L>;
  return new client.Histogram<L>({ name, help, labelNames: [...labelNames], buckets, registers: [registry] });
}

/** `2xx`, `4xx`, `5xx`…: the bounded label we use for response codes. */
export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}
