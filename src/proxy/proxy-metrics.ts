import { performance } from 'node:perf_hooks';
import client from 'prom-client';
import { counter, registry } from '../metrics';

/**
 * The per-request metrics, counted in plain numbers and handed to prom-client only when
 * /metrics is read: prom-client's own inc() and observe() build and hash a label object on
 * every call, which was the largest cost of ours per request. Health, retry and overload
 * metrics live with their modules (health/, retry.ts, overload.ts); they count failures,
 * not requests.
 *
 * Totals are per process, like prom-client's registry: every Proxy in one process adds to them.
 */

const REQUESTS = 'switchboard_proxy_requests_total';
const DURATION = 'switchboard_proxy_request_duration_seconds';
/** The same buckets as every other `_seconds` histogram (src/metrics.ts). */
const BOUNDS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const CODE_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

interface ServiceTotals {
  readonly byClass: Float64Array;
  /** Not cumulative: index i counts durations in (BOUNDS[i-1], BOUNDS[i]]; the last, above them all. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

const totals = new Map<string, ServiceTotals>();

const upstreamErrors = counter('switchboard_proxy_upstream_errors_total', 'Upstream requests that failed', ['service', 'error']);

export class ProxyMetrics {
  record(service: string, status: number, startedAt: number): void {
    const t = totalsFor(service);
    t.byClass[Math.min(Math.floor(status / 100), 5)]++;
    const seconds = (performance.now() - startedAt) / 1000;
    let i = 0;
    while (i < BOUNDS.length && seconds > BOUNDS[i]) i++;
    t.buckets[i]++;
    t.sum += seconds;
    t.count++;
  }

  upstreamError(service: string, error: string): void {
    upstreamErrors.inc({ service, error });
  }
}

function totalsFor(service: string): ServiceTotals {
  let t = totals.get(service);
  if (t === undefined) {
    t = { byClass: new Float64Array(CODE_CLASSES.length), buckets: new Float64Array(BOUNDS.length + 1), sum: 0, count: 0 };
    totals.set(service, t);
  }
  return t;
}

/** A prom-client Counter whose values are set from `totals` at each collection. */
function requestsCounter(): void {
  if (registry.getSingleMetric(REQUESTS)) return;
  new client.Counter({
    name: REQUESTS,
    help: 'Requests answered by the proxy',
    labelNames: ['service', 'code_class'],
    registers: [registry],
    collect(this: client.Counter<'service' | 'code_class'>) {
      this.reset();
      for (const [service, t] of totals) {
        t.byClass.forEach((n, i) => {
          if (n > 0) this.inc({ service, code_class: CODE_CLASSES[i] }, n);
        });
      }
    },
  });
}

interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * A histogram read from `totals`. prom-client's Histogram cannot be given counts, so this is
 * a metric of our own, registered like any other (Registry.registerMetric reads `get()`).
 */
class DurationHistogram {
  readonly name = DURATION;
  readonly help = 'Time from receiving a request to the end of its response';
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values: Sample[] = [];
    for (const [service, t] of totals) {
      let cumulative = 0;
      for (let i = 0; i < BOUNDS.length; i++) {
        cumulative += t.buckets[i];
        values.push({ metricName: `${DURATION}_bucket`, labels: { le: BOUNDS[i], service }, value: cumulative });
      }
      values.push({ metricName: `${DURATION}_bucket`, labels: { le: '+Inf', service }, value: t.count });
      values.push({ metricName: `${DURATION}_sum`, labels: { service }, value: t.sum });
      values.push({ metricName: `${DURATION}_count`, labels: { service }, value: t.count });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  /** registry.resetMetrics() */
  reset(): void {
    for (const t of totals.values()) {
      t.buckets.fill(0);
      t.sum = 0;
      t.count = 0;
    }
  }
}

function durationHistogram(): void {
  if (registry.getSingleMetric(DURATION)) return;
  registry.registerMetric(new DurationHistogram() as unknown as client.Metric);
}

requestsCounter();
durationHistogram();
