import { performance } from 'node:perf_hooks';
import { counter, histogram } from '../metrics';

const requestsTotal = counter('switchboard_proxy_requests_total', 'Requests answered by the proxy', [
  'service',
  'code_class',
]);
const requestDuration = histogram(
  'switchboard_proxy_request_duration_seconds',
  'Time from receiving a request to the end of its response',
  ['service'],
);
const upstreamErrors = counter('switchboard_proxy_upstream_errors_total', 'Upstream requests that failed', [
  'service',
  'error',
]);

const CODE_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

interface ServiceMeters {
  byClass: Array<{ inc(): void } | undefined>;
  duration: { observe(seconds: number): void };
}

/**
 * The per-request metrics: prom-client label children cached per service, so recording a
 * request builds no label objects. Health, retry and overload metrics live with their
 * modules (health/, retry.ts, overload.ts).
 */
export class ProxyMetrics {
  private readonly services = new Map<string, ServiceMeters>();

  record(service: string, status: number, startedAt: number): void {
    const meters = this.metersFor(service);
    const index = Math.min(Math.floor(status / 100), 5);
    let requests = meters.byClass[index];
    if (requests === undefined) {
      requests = requestsTotal.labels(service, CODE_CLASSES[index]);
      meters.byClass[index] = requests;
    }
    requests.inc();
    meters.duration.observe((performance.now() - startedAt) / 1000);
  }

  upstreamError(service: string, error: string): void {
    upstreamErrors.inc({ service, error });
  }

  private metersFor(service: string): ServiceMeters {
    let meters = this.services.get(service);
    if (meters === undefined) {
      meters = { byClass: [], duration: requestDuration.labels(service) };
      this.services.set(service, meters);
    }
    return meters;
  }
}
