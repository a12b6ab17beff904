/**
 * Distributed mode on loopback: how long from a registration's HTTP 200 until each proxy
 * routes to the new instance, and how long a registry takes to lead after a kill -9 of
 * the leader. Topology as `npm run cluster`: 3 etcd members, Redis, 2 registries, 2 proxies.
 *
 *   node dist/bench/distributed-propagation.js [--registrations=200] [--takeovers=3] [--poll-gap-ms=1]
 *
 * Each round starts one backend (it answers with its id), registers it through the two
 * registries in turn, then polls every proxy (one request at a time, --poll-gap-ms apart,
 * default 1; 0 = back to back) until one is answered by the new backend; then deregisters
 * it. Back-to-back polling of two proxies keeps both of a 2-core machine's cores busy with
 * the polls themselves and measures mostly CPU contention; a 1 ms gap costs at most ~1 ms
 * of resolution. Service `prop`
 * keeps one base instance, so once a proxy knows the new one, round robin sends it the next
 * request. Reports p50/p90/p99/max per proxy and for "every proxy" (the slower of the two).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { Backend } from '../test/helpers/backend';
import { waitFor } from '../test/helpers/child';
import { Topology, deregister, leaderOf, register, viaProxy } from '../test/helpers/distributed';
import type { RoleProcess } from '../test/helpers/role-process';

const SERVICE = 'prop';
const ROUTE_TIMEOUT_MS = 10_000;

interface Options {
  registrations: number;
  takeovers: number;
  /** Pause between two polls of one proxy; 0 = back to back. */
  pollGapMs: number;
}

function parseOptions(argv: string[]): Options {
  const value = (name: string, fallback: number): number => {
    const arg = argv.find((a) => a.startsWith(`--${name}=`));
    const n = arg ? Number(arg.slice(name.length + 3)) : fallback;
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
    return n;
  };
  return { registrations: value('registrations', 200), takeovers: value('takeovers', 3), pollGapMs: value('poll-gap-ms', 1) };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function stats(label: string, samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const f = (n: number): string => n.toFixed(2).padStart(8);
  return `  ${label.padEnd(14)} n=${String(s.length).padEnd(5)} p50 ${f(percentile(s, 50))}  p90 ${f(percentile(s, 90))}  p99 ${f(percentile(s, 99))}  max ${f(s[s.length - 1] ?? NaN)}  (ms)`;
}

/** Back-to-back requests through one proxy until `id` answers; ms after `since`, or null. */
async function untilRouted(proxy: RoleProcess, agent: http.Agent, id: string, since: number, gapMs: number): Promise<number | null> {
  const deadline = since + ROUTE_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const reply = await viaProxy(proxy, SERVICE, '/', agent);
    if (reply.status === 200 && (JSON.parse(reply.body) as { backend?: string }).backend === id) return performance.now() - since;
    if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  return null;
}

async function measurePropagation(t: Topology, count: number, pollGapMs: number): Promise<number[][]> {
  const agents = t.proxies.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const registryAgent = new http.Agent({ keepAlive: true });
  const base = await Backend.start('base');
  const perProxy: number[][] = t.proxies.map(() => []);
  try {
    await register(t.registries[0], { id: 'base', service: SERVICE, port: base.port });
    for (let i = 0; i < count; i++) {
      const id = `prop-${i}`;
      const backend = await Backend.start(id);
      const registry = t.registries[i % t.registries.length];
      const reply = await register(registry, { id, service: SERVICE, port: backend.port }, registryAgent);
      const ackAt = performance.now();
      if (reply.status !== 200) throw new Error(`register ${id}: ${reply.status} ${reply.body}`);
      const seen = await Promise.all(t.proxies.map((p, k) => untilRouted(p, agents[k], id, ackAt, pollGapMs)));
      seen.forEach((ms, k) => {
        if (ms === null) throw new Error(`proxy ${k + 1} never routed to ${id}`);
        perProxy[k].push(ms);
      });
      await deregister(registry, id, registryAgent);
      await backend.close();
    }
    return perProxy;
  } finally {
    agents.forEach((a) => a.destroy());
    registryAgent.destroy();
    await base.close();
  }
}

/** kill -9 the leader, time until a survivor names itself leader; then start a replacement. */
async function measureTakeovers(t: Topology, trials: number): Promise<number[]> {
  const times: number[] = [];
  for (let trial = 0; trial < trials; trial++) {
    const alive = t.registries.filter((r) => r.running());
    const leaderAddress = await leaderOf(alive[0]);
    const leader = alive.find((r) => r.address('api') === leaderAddress);
    const survivor = alive.find((r) => r !== leader);
    if (!leader || !survivor) throw new Error(`no leader among the registries (leader says "${leaderAddress}")`);
    const killedAt = performance.now();
    await leader.kill('SIGKILL');
    await waitFor('a survivor to lead', async () => (await leaderOf(survivor)) === survivor.address('api'), 30_000);
    times.push(performance.now() - killedAt);
    await t.startRegistry();
  }
  return times;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  process.stdout.write('starting 3 etcd members, redis-server, 2 registries, 2 proxies...\n');
  const t = await Topology.start({ etcdMembers: 3, registries: 2, proxies: 2 });
  try {
    const perProxy = await measurePropagation(t, options.registrations, options.pollGapMs);
    const everyProxy = perProxy[0].map((_, i) => Math.max(...perProxy.map((p) => p[i])));
    const takeovers = await measureTakeovers(t, options.takeovers);
    const lines = [
      '',
      `Propagation: registration HTTP 200 → proxy routes to the new instance (${options.registrations} registrations, polls ${options.pollGapMs} ms apart)`,
      ...perProxy.map((samples, k) => stats(`proxy ${k + 1}`, samples)),
      stats('every proxy', everyProxy),
      '',
      `Leader takeover after kill -9 of the leader registry (election lease TTL 3 s): ${takeovers.map((ms) => `${Math.round(ms)} ms`).join(', ')}`,
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const sorted = [...everyProxy].sort((a, b) => a - b);
    const json = { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted[sorted.length - 1], takeoverMs: takeovers };
    process.stdout.write(`${JSON.stringify(json)}\n`);
  } finally {
    await t.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`distributed-propagation: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
