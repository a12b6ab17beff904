/**
 * (e) Propagation latency: from the registry's HTTP 200 for a new instance to the first request
 * each proxy routes to it, in every mode. Service `prop` keeps one base instance; each round
 * registers one more (its own listener, answering `x-instance: <id>`) through the registries in
 * turn, polls every proxy (one request at a time, `pollGapMs` apart) until a response comes
 * from the new id, then deregisters it. With round robin a proxy that knows the new instance
 * sends it the next request, so the poll adds at most one request plus the gap. A registration
 * counts as propagated once every proxy routes to it (the slower proxy).
 */
import type http from 'node:http';
import { monotonicMs } from '../clock';
import { httpRequest, keepAliveAgent } from '../http';
import type { Mode } from '../peers/peer';
import { waitUntilRouted, type SwitchboardPeer } from '../peers/switchboard';
import { percentile, round } from '../stats';
import { perModeScenario } from './per-mode';
import { type ScenarioContext, table } from './scenario';

const SERVICE = 'prop';
const HOST = `${SERVICE}.svc`;

export interface LatencySummary {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface PropagationRow extends LatencySummary {
  mode: Mode;
  proxies: number;
  registrations: number;
  /** Registrations some proxy did not route to within the timeout. */
  timeouts: number;
  /** The same latencies for each proxy on its own. */
  perProxy: LatencySummary[];
  /** Registration round trip (PUT → 200), p50. */
  registerP50Ms: number;
  /** Poll requests the first proxy needed per registration, p50. */
  pollsP50: number;
  pollGapMs: number;
}

interface Sample {
  /** ms from the ack until each proxy routed to the new instance; null = timed out. */
  perProxyMs: Array<number | null>;
  registerMs: number;
  polls: number;
}

/** GETs through one proxy until one is answered by `id`; the time, or null at `deadline`. */
async function pollUntilServedBy(proxyUrl: string, agent: http.Agent, id: string, deadline: number, gapMs: number): Promise<{ at: number | null; polls: number }> {
  let polls = 0;
  while (monotonicMs() < deadline) {
    polls++;
    const res = await httpRequest(`${proxyUrl}/small`, { headers: { host: HOST }, agent });
    if (res.headers['x-instance'] === id) return { at: monotonicMs(), polls };
    if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  return { at: null, polls };
}

async function measureOne(ctx: ScenarioContext, sb: SwitchboardPeer, agents: http.Agent[], i: number): Promise<Sample> {
  const { timeoutMs, pollGapMs } = ctx.settings.propagation;
  const id = `${SERVICE}-${i}`;
  const registry = sb.registries[i % sb.registries.length];
  const port = await ctx.backends.open(id);
  const sentAt = monotonicMs();
  await registry.register({ id, service: SERVICE, port });
  const ackAt = monotonicMs();
  const seen = await Promise.all(sb.proxyUrls.map((url, k) => pollUntilServedBy(url, agents[k], id, ackAt + timeoutMs, pollGapMs)));
  await registry.deregister(id);
  await ctx.backends.close(id);
  return { perProxyMs: seen.map((s) => (s.at === null ? null : s.at - ackAt)), registerMs: ackAt - sentAt, polls: seen[0].polls };
}

function latencies(values: number[]): LatencySummary {
  return { p50Ms: round(percentile(values, 50)), p90Ms: round(percentile(values, 90)), p99Ms: round(percentile(values, 99)), maxMs: round(Math.max(...values)) };
}

function summarize(mode: Mode, proxies: number, pollGapMs: number, samples: Sample[]): PropagationRow {
  const everyProxy = samples.filter((s) => s.perProxyMs.every((ms) => ms !== null)).map((s) => Math.max(...(s.perProxyMs as number[])));
  const perProxy = Array.from({ length: proxies }, (_, k) => latencies(samples.map((s) => s.perProxyMs[k]).filter((ms): ms is number => ms !== null)));
  return {
    mode,
    proxies,
    registrations: samples.length,
    timeouts: samples.length - everyProxy.length,
    ...latencies(everyProxy),
    perProxy,
    registerP50Ms: round(percentile(samples.map((s) => s.registerMs), 50)),
    pollsP50: percentile(samples.map((s) => s.polls), 50),
    pollGapMs,
  };
}

function render(rows: PropagationRow[]): string {
  const header = ['mode', 'proxies', 'registrations', 'not seen', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'register PUT p50 ms', 'polls p50'];
  const cells = rows.map((d) => [d.mode, d.proxies, d.registrations, d.timeouts, d.p50Ms, d.p90Ms, d.p99Ms, d.maxMs, d.registerP50Ms, d.pollsP50]);
  const gaps = [...new Set(rows.map((d) => d.pollGapMs))].join('/');
  return (
    'Registration acknowledged (HTTP 200) → every proxy routes a request to the new instance ' +
    `(with several proxies, the slower one; each proxy polled ${gaps} ms apart).\n\n${table(header, cells)}`
  );
}

async function measure(ctx: ScenarioContext, sb: SwitchboardPeer): Promise<PropagationRow> {
  const agents = sb.proxyUrls.map(() => keepAliveAgent(1));
  const basePort = await ctx.backends.open(`${SERVICE}-base`);
  try {
    await sb.registry.register({ id: `${SERVICE}-base`, service: SERVICE, port: basePort });
    for (const url of sb.proxyUrls) await waitUntilRouted(url, HOST);
    const samples: Sample[] = [];
    for (let i = 0; i < ctx.settings.propagation.registrations; i++) samples.push(await measureOne(ctx, sb, agents, i));
    const row = summarize(ctx.mode, sb.proxyUrls.length, ctx.settings.propagation.pollGapMs, samples);
    ctx.log(`  ${ctx.mode}: p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms over ${row.registrations} registrations, ${row.proxies} prox${row.proxies === 1 ? 'y' : 'ies'}`);
    return row;
  } finally {
    agents.forEach((a) => a.destroy());
    await sb.registry.deregister(`${SERVICE}-base`).catch(() => undefined);
    await ctx.backends.close(`${SERVICE}-base`);
  }
}

export const propagationScenario = perModeScenario<PropagationRow>({ name: 'propagation', title: 'Propagation latency', measure, render });
