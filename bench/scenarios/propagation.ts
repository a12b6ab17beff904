/**
 * (e) Propagation latency: from the registry's HTTP 200 for a new instance to the first request
 * the proxy routes to it. Service `prop` keeps one base instance; each round registers one more
 * (its own listener, answering `x-instance: <id>`), polls through the proxy back to back until
 * a response comes from the new id, then deregisters it. With round robin the poll needs at
 * most one extra request once the proxy knows, i.e. well under a millisecond on loopback.
 */
import type http from 'node:http';
import { monotonicMs } from '../clock';
import { httpRequest, keepAliveAgent } from '../http';
import { waitUntilRouted, type SwitchboardPeer } from '../peers/switchboard';
import { percentile, round } from '../stats';
import { type Scenario, type ScenarioContext, type ScenarioOutcome, skipped, table } from './scenario';

const SERVICE = 'prop';
const HOST = `${SERVICE}.svc`;

export interface PropagationData {
  mode: string;
  registrations: number;
  /** Registrations not seen through the proxy within the timeout. */
  timeouts: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Registration round trip (PUT → 200), p50. */
  registerP50Ms: number;
  /** Poll requests sent per registration, p50. */
  pollsP50: number;
}

interface Sample {
  ms: number | null;
  registerMs: number;
  polls: number;
}

/** Back-to-back GETs until one is answered by `id`; null when `timeoutMs` passes first. */
async function pollUntilServedBy(sb: SwitchboardPeer, agent: http.Agent, id: string, timeoutMs: number): Promise<{ at: number | null; polls: number }> {
  const deadline = monotonicMs() + timeoutMs;
  let polls = 0;
  while (monotonicMs() < deadline) {
    polls++;
    const res = await httpRequest(`${sb.baseUrl}/small`, { headers: { host: HOST }, agent });
    if (res.headers['x-instance'] === id) return { at: monotonicMs(), polls };
  }
  return { at: null, polls };
}

async function measureOne(ctx: ScenarioContext, sb: SwitchboardPeer, agent: http.Agent, i: number): Promise<Sample> {
  const id = `${SERVICE}-${i}`;
  const port = await ctx.backends.open(id);
  const sentAt = monotonicMs();
  await sb.registry.register({ id, service: SERVICE, port });
  const ackAt = monotonicMs();
  const seen = await pollUntilServedBy(sb, agent, id, ctx.settings.propagation.timeoutMs);
  await sb.registry.deregister(id);
  await ctx.backends.close(id);
  return { ms: seen.at === null ? null : seen.at - ackAt, registerMs: ackAt - sentAt, polls: seen.polls };
}

function summarize(mode: string, samples: Sample[]): PropagationData {
  const seen = samples.map((s) => s.ms).filter((ms): ms is number => ms !== null);
  return {
    mode,
    registrations: samples.length,
    timeouts: samples.length - seen.length,
    p50Ms: round(percentile(seen, 50)),
    p90Ms: round(percentile(seen, 90)),
    p99Ms: round(percentile(seen, 99)),
    maxMs: round(Math.max(...seen)),
    registerP50Ms: round(percentile(samples.map((s) => s.registerMs), 50)),
    pollsP50: percentile(samples.map((s) => s.polls), 50),
  };
}

function render(d: PropagationData): string {
  const header = ['mode', 'registrations', 'not seen', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'register PUT p50 ms', 'polls p50'];
  const row = [d.mode, d.registrations, d.timeouts, d.p50Ms, d.p90Ms, d.p99Ms, d.maxMs, d.registerP50Ms, d.pollsP50];
  return `Registration acknowledged (HTTP 200) → first request routed to the new instance.\n\n${table(header, [row])}`;
}

export const propagationScenario: Scenario = {
  name: 'propagation',
  title: 'Propagation latency',
  async run(ctx): Promise<ScenarioOutcome> {
    const sb = ctx.switchboard;
    if (!sb) return skipped('needs the switchboard peer');
    const agent = keepAliveAgent(1);
    const basePort = await ctx.backends.open(`${SERVICE}-base`);
    try {
      await sb.registry.register({ id: `${SERVICE}-base`, service: SERVICE, port: basePort });
      await waitUntilRouted(sb.baseUrl, HOST);
      const samples: Sample[] = [];
      for (let i = 0; i < ctx.settings.propagation.registrations; i++) samples.push(await measureOne(ctx, sb, agent, i));
      const data = summarize(ctx.mode, samples);
      ctx.log(`  p50 ${data.p50Ms} ms, p99 ${data.p99Ms} ms over ${data.registrations} registrations`);
      return { data, markdown: render(data) };
    } finally {
      agent.destroy();
      await sb.registry.deregister(`${SERVICE}-base`).catch(() => undefined);
      await ctx.backends.close(`${SERVICE}-base`);
    }
  },
};
