/**
 * One /metrics over the workers of `switchboard proxy --workers N`: counters and histograms
 * summed, gauges by their aggregator, and totals that never go backwards when a worker dies
 * or does not answer.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ClusterMetrics, type MetricsSource } from '../../src/roles/cluster-metrics';

/** A worker's registry: the metrics a proxy worker has, with values the test sets. */
class FakeWorker {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'requests_total', help: 'h', labelNames: ['service'], registers: [this.registry] });
  readonly revision = new Gauge({ name: 'revision', help: 'h', aggregator: 'max', registers: [this.registry] });
  readonly duration = new Histogram({ name: 'duration_seconds', help: 'h', buckets: [0.1, 1], registers: [this.registry] });
}

/** Stands in for the WorkerPool: answers come from FakeWorkers, or not at all when `silent`. */
class FakePool implements MetricsSource {
  readonly workers = new Map<number, FakeWorker>();
  readonly silent = new Set<number>();
  private readonly exitListeners: Array<(id: number) => void> = [];
  /** Runs after the answers are gathered, before askAll resolves (an exit during a scrape). */
  duringAsk: (() => void) | undefined;

  async askAll(): Promise<Map<number, unknown>> {
    const answers = new Map<number, unknown>();
    for (const [id, worker] of this.workers) answers.set(id, this.silent.has(id) ? undefined : await worker.registry.getMetricsAsJSON());
    this.duringAsk?.();
    return answers;
  }

  onWorkerExit(listener: (id: number) => void): void {
    this.exitListeners.push(listener);
  }

  exit(id: number): void {
    this.workers.delete(id);
    for (const listener of this.exitListeners) listener(id);
  }
}

function sample(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  assert.ok(found, `no sample ${line} in:\n${text}`);
  return Number(found.slice(found.lastIndexOf(' ') + 1));
}

function setup(workerCount: number): { pool: FakePool; metrics: ClusterMetrics; workers: FakeWorker[] } {
  const pool = new FakePool();
  const workers = Array.from({ length: workerCount }, (_, i) => {
    const worker = new FakeWorker();
    pool.workers.set(i + 1, worker);
    return worker;
  });
  return { pool, metrics: new ClusterMetrics(pool, new Registry()), workers };
}

describe('cluster metrics', () => {
  test('sums counters and histograms over the workers; a max gauge shows the highest', async () => {
    const { metrics, workers } = setup(2);
    workers[0].requests.inc({ service: 'a' }, 3);
    workers[1].requests.inc({ service: 'a' }, 4);
    workers[1].requests.inc({ service: 'b' }, 1);
    workers[0].revision.set(7);
    workers[1].revision.set(9);
    workers[0].duration.observe(0.05);
    workers[1].duration.observe(0.5);

    const text = await metrics.render();
    assert.equal(sample(text, 'requests_total{service="a"}'), 7);
    assert.equal(sample(text, 'requests_total{service="b"}'), 1);
    assert.equal(sample(text, 'revision'), 9);
    assert.equal(sample(text, 'duration_seconds_bucket{le="0.1"}'), 1);
    assert.equal(sample(text, 'duration_seconds_bucket{le="1"}'), 2);
    assert.equal(sample(text, 'duration_seconds_count'), 2);
  });

  test('a worker that exits keeps its last counted totals, so the sum never goes backwards', async () => {
    const { pool, metrics, workers } = setup(2);
    workers[0].requests.inc({ service: 'a' }, 5);
    workers[1].requests.inc({ service: 'a' }, 2);
    assert.equal(sample(await metrics.render(), 'requests_total{service="a"}'), 7);

    pool.exit(1);
    const replacement = new FakeWorker();
    pool.workers.set(3, replacement);
    replacement.requests.inc({ service: 'a' }, 1);
    assert.equal(sample(await metrics.render(), 'requests_total{service="a"}'), 8);

    // A second death adds to the retired totals rather than replacing them.
    pool.exit(2);
    assert.equal(sample(await metrics.render(), 'requests_total{service="a"}'), 8);
  });

  test('a worker that does not answer in time counts with its last answer', async () => {
    const { pool, metrics, workers } = setup(2);
    workers[0].requests.inc({ service: 'a' }, 5);
    workers[1].requests.inc({ service: 'a' }, 2);
    await metrics.render();
    pool.silent.add(1);
    workers[1].requests.inc({ service: 'a' }, 1);
    assert.equal(sample(await metrics.render(), 'requests_total{service="a"}'), 8);
  });

  test('a worker that exits during a scrape is not counted twice', async () => {
    const { pool, metrics, workers } = setup(2);
    workers[0].requests.inc({ service: 'a' }, 5);
    workers[1].requests.inc({ service: 'a' }, 2);
    assert.equal(sample(await metrics.render(), 'requests_total{service="a"}'), 7);
    pool.duringAsk = () => pool.exit(1);
    assert.equal(sample(await metrics.render(), 'requests_total{service="a"}'), 7);
    pool.duringAsk = undefined;
    assert.equal(sample(await metrics.render(), 'requests_total{service="a"}'), 7);
  });
});
