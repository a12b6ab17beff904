import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { registry } from '../../src/metrics';
import { ProxyMetrics } from '../../src/proxy/proxy-metrics';

type Labels = Record<string, string | number>;

async function samples(name: string, service: string): Promise<Array<{ metricName?: string; labels: Labels; value: number }>> {
  const metric = await registry.getSingleMetric(name)?.get();
  return (metric?.values ?? []).filter((v) => v.labels.service === service) as Array<{ metricName?: string; labels: Labels; value: number }>;
}

describe('ProxyMetrics (counted locally, read by prom-client at collection)', () => {
  const metrics = new ProxyMetrics();
  // Seconds ago, far from any bucket bound: a slow machine cannot move them across one.
  const secondsAgo = (s: number) => performance.now() - s * 1000;

  it('counts requests by service and status class', async () => {
    for (const status of [200, 204, 101, 499, 503, 502, 999]) metrics.record('metrics-unit', status, performance.now());
    const byClass = Object.fromEntries((await samples('switchboard_proxy_requests_total', 'metrics-unit')).map((v) => [v.labels.code_class, v.value]));
    assert.deepEqual(byClass, { '1xx': 1, '2xx': 2, '4xx': 1, '5xx': 3 });
  });

  it('exports durations as a cumulative Prometheus histogram', async () => {
    metrics.record('metrics-hist', 200, secondsAgo(3));
    metrics.record('metrics-hist', 200, secondsAgo(7));
    metrics.record('metrics-hist', 200, secondsAgo(20));
    const values = await samples('switchboard_proxy_request_duration_seconds', 'metrics-hist');
    const bucket = (le: number | string) => values.find((v) => v.metricName?.endsWith('_bucket') && v.labels.le === le)?.value;
    assert.deepEqual([bucket(2.5), bucket(5), bucket(10), bucket('+Inf')], [0, 1, 2, 3]);
    assert.equal(values.find((v) => v.metricName?.endsWith('_count'))?.value, 3);
    assert.ok((values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0) >= 30);
    const text = await registry.getSingleMetricAsString('switchboard_proxy_request_duration_seconds');
    assert.match(text, /^# TYPE switchboard_proxy_request_duration_seconds histogram$/m);
    assert.match(text, /^switchboard_proxy_request_duration_seconds_bucket\{le="5",service="metrics-hist"\} 1$/m);
  });
});
