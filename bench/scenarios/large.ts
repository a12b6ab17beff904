/**
 * (c) 1 MiB responses and 1 MiB uploads through every peer, with the proxy's RSS sampled from
 * /proc during the run: a streaming proxy's peak stays near its idle RSS however many MiB
 * pass through.
 */
import { RssSampler, treeRssBytes } from '../cpu';
import type { LoadSpec } from '../load';
import type { PeerName, RunningPeer } from '../peers/peer';
import { round } from '../stats';
import { type Scenario, type ScenarioContext, type ScenarioOutcome, table } from './scenario';

const MIB = 1024 * 1024;

export type Direction = 'download' | 'upload';

export interface LargeRow {
  peer: PeerName;
  direction: Direction;
  rps: number;
  mibPerS: number;
  p99Ms: number;
  errors: number;
  /** Proxy RSS before the run and its peak during it; null for `direct`. */
  rssIdleMiB: number | null;
  rssPeakMiB: number | null;
}

export interface LargeData {
  connections: number;
  rows: LargeRow[];
}

function spec(ctx: ScenarioContext, peer: RunningPeer, direction: Direction): LoadSpec {
  const { run, connections } = ctx.settings.large;
  const base = { host: peer.host, connections, ...run };
  return direction === 'download'
    ? { ...base, url: `${peer.baseUrl}/big` }
    : { ...base, url: `${peer.baseUrl}/upload`, method: 'POST', bodyBytes: MIB };
}

async function measure(ctx: ScenarioContext, peer: RunningPeer, direction: Direction): Promise<LargeRow> {
  const idle = peer.pid === undefined ? null : treeRssBytes(peer.pid);
  const sampler = peer.pid === undefined ? undefined : new RssSampler(peer.pid).start();
  const result = await ctx.load.run(spec(ctx, peer, direction));
  const peak = sampler?.stop();
  return {
    peer: peer.name,
    direction,
    rps: round(result.rps),
    mibPerS: round(result.rps), // one MiB per request either way
    p99Ms: round(result.latencyMs.p99),
    errors: result.errors,
    rssIdleMiB: idle === null ? null : round(idle / MIB),
    rssPeakMiB: peak === undefined ? null : round(peak / MIB),
  };
}

function render(data: LargeData): string {
  const header = ['peer', 'direction', 'MiB/s', 'p99 ms', 'errors', 'proxy RSS idle MiB', 'proxy RSS peak MiB'];
  const rows = data.rows.map((r) => [r.peer, r.direction, r.mibPerS, r.p99Ms, r.errors, r.rssIdleMiB, r.rssPeakMiB]);
  return `1 MiB bodies over ${data.connections} keep-alive connections; RSS of the proxy's process tree sampled every 50 ms.\n\n${table(header, rows)}`;
}

export const largeScenario: Scenario = {
  name: 'large',
  title: '1 MiB download and upload',
  async run(ctx): Promise<ScenarioOutcome> {
    const rows: LargeRow[] = [];
    for (const direction of ['download', 'upload'] as const) {
      for (const peer of ctx.peers) {
        const row = await measure(ctx, peer, direction);
        ctx.log(`  ${direction} ${peer.name}: ${row.mibPerS} MiB/s, peak RSS ${row.rssPeakMiB ?? '–'} MiB`);
        rows.push(row);
      }
    }
    const data: LargeData = { connections: ctx.settings.large.connections, rows };
    return { data, markdown: render(data) };
  },
};
