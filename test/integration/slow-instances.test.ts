/**
 * Slow instances with the default policy (latency-aware weights): steady keep-alive load over
 * three instances (real processes) while one of them turns 20× slower (2 ms → 40 ms), or all
 * of them do together. One slow instance must lose its traffic within seconds without being
 * ejected; a backend-wide slowdown must change nobody's share, eject nobody and cause no
 * retries. Shares and p99s are printed; only the behaviour is asserted (the share bound is
 * the issue's 10 %, against the ~0.25 % the weights aim for).
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import { BackendProcess } from '../helpers/backend-process';
import { runLoad, type Outcome } from '../helpers/load';
import { ProxyHarness, metricValue } from '../helpers/proxy-harness';

const CONCURRENCY = 8;

const started: Array<{ stop(): Promise<void> }> = [];
after(async () => {
  await Promise.all(started.map((s) => s.stop()));
});

async function threeInstances(service: string): Promise<{ harness: ProxyHarness; backends: BackendProcess[] }> {
  const harness = await ProxyHarness.start({ timeouts: { response: 10_000 } });
  started.push(harness);
  const backends = await Promise.all(['a', 'b', 'c'].map((id) => BackendProcess.start(`${service}-${id}`)));
  started.push(...backends.map((b) => ({ stop: () => b.kill() })));
  await harness.serveFrom(service, backends);
  return { harness, backends };
}

function load(harness: ProxyHarness, service: string, options: { total: number; stopAfterMs?: number }) {
  const { host, port } = harness.address;
  return runLoad({ host, port, hostHeader: `${service}.svc`, path: '/work?delay=2', concurrency: CONCURRENCY, idPrefix: service, ...options });
}

function p99(outcomes: Outcome[]): number {
  const sorted = outcomes.map((o) => o.ms).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? NaN;
}

function share(outcomes: Outcome[], backend: string): number {
  return outcomes.filter((o) => o.backend === backend).length / outcomes.length;
}

async function serviceCounters(service: string): Promise<{ ejections: number; retries: number }> {
  let ejections = 0;
  for (const reason of ['consecutive_5xx', 'consecutive_gateway_failure', 'latency']) ejections += await metricValue('switchboard_proxy_ejections_total', { service, reason });
  let retries = 0;
  for (const reason of ['connect_failure', 'reset', 'timeout', 'gateway_error', '5xx']) retries += await metricValue('switchboard_proxy_retries_total', { service, reason });
  return { ejections, retries };
}

describe('slow instances, default policy', () => {
  it('one instance turns 20× slower: within seconds it gets little traffic, and is not ejected', async () => {
    const service = 'one-slow';
    const { harness, backends } = await threeInstances(service);
    const victim = backends[2];
    const baseline = await load(harness, service, { total: 600 });
    assert.equal(baseline.failures.length, 0);
    await victim.setMode('slow');
    const switchedAt = performance.now();
    const during = await load(harness, service, { total: 100_000, stopAfterMs: 5_000 });
    assert.equal(during.failures.length, 0, JSON.stringify(during.failures.slice(0, 3)));
    const bySecond = [0, 1, 2, 3, 4].map((s) => during.outcomes.filter((o) => o.sentAt - switchedAt >= s * 1000 && o.sentAt - switchedAt < (s + 1) * 1000));
    const settled = during.outcomes.filter((o) => o.sentAt - switchedAt >= 3_000);
    const settledShare = share(settled, victim.id);
    console.log(
      `# one instance 20× slower: its share per second after the switch ${bySecond.map((b) => `${(share(b, victim.id) * 100).toFixed(1)} %`).join(', ')}; ` +
        `p99 healthy ${p99(baseline.outcomes).toFixed(1)} ms, p99 from 3 s on ${p99(settled).toFixed(1)} ms; ${during.outcomes.length} requests`,
    );
    assert.ok(settled.length > 100, `enough requests to judge (${settled.length})`);
    assert.ok(settledShare <= 0.1, `the slow instance still gets ${(settledShare * 100).toFixed(1)} % of the requests`);
    assert.ok(settledShare > 0, 'it is still sampled, so it can earn its share back');
    assert.equal(harness.upstream(service, victim.id).ejected, false, 'slow is not failed: no ejection by default');
    assert.equal((await serviceCounters(service)).ejections, 0);
  });

  it('every instance slows down together: nobody is ejected, nothing is retried, shares stay even', async () => {
    const service = 'all-slow';
    const { harness, backends } = await threeInstances(service);
    const baseline = await load(harness, service, { total: 600 });
    await Promise.all(backends.map((b) => b.setMode('slow')));
    const during = await load(harness, service, { total: 600 });
    const shares = backends.map((b) => share(during.outcomes, b.id));
    console.log(`# every instance 20× slower: p99 ${p99(baseline.outcomes).toFixed(1)} → ${p99(during.outcomes).toFixed(1)} ms; shares ${shares.map((s) => `${(s * 100).toFixed(1)} %`).join(', ')}`);
    assert.equal(during.failures.length, 0, JSON.stringify(during.failures.slice(0, 3)));
    assert.deepEqual(await serviceCounters(service), { ejections: 0, retries: 0 });
    for (const s of shares) assert.ok(s > 0.2, `shares stay near a third: ${shares.join(', ')}`);
  });
});
