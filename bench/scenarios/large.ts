/**
 * (c) 1 MiB responses and 1 MiB uploads through every peer. Runs are interleaved like the
 * small GETs (round 1: A B C, round 2: A B C, …) and each peer's MiB/s is compared with the
 * bare script's round by round: on two shared cores, a single pass per peer moved the
 * download ratio between 0.5× and 1.1× from one run to the next. Alongside: the proxy's CPU
 * per MiB (its process tree's utime+stime over the run) and its RSS sampled from /proc, so a
 * streaming proxy shows a peak near its idle RSS however many MiB pass through.
 */
import { RssSampler, treeCpuSeconds, treeRssBytes } from '../cpu';
import { benchRequest, type LoadSpec } from '../load';
import type { PeerName, RunningPeer } from '../peers/peer';
import { describePaired, median, pairedRatio, round, type PairedRatio } from '../stats';
import { type Scenario, type ScenarioContext, type ScenarioOutcome, table } from './scenario';

const MIB = 1024 * 1024;
const DIRECTIONS = ['download', 'upload'] as const;

export type Direction = (typeof DIRECTIONS)[number];

/** One peer, one direction, one round. */
interface LargeSample {
  mibPerS: number;
  p99Ms: number;
  errors: number;
  /** CPU milliseconds of the proxy per MiB moved; null for `direct`. */
  cpuMsPerMiB: number | null;
  rssIdleMiB: number | null;
  rssPeakMiB: number | null;
}

export interface LargeRow {
  peer: PeerName;
  direction: Direction;
  /** Medians over rounds. */
  mibPerS: number;
  p99Ms: number;
  cpuMsPerMiB: number | null;
  errors: number;
  /** Proxy RSS before its first round and its peak over all rounds; null for `direct`. */
  rssIdleMiB: number | null;
  rssPeakMiB: number | null;
  /** MiB/s over the bare script's, paired by round. */
  vsBare: PairedRatio | null;
  roundsMiBPerS: number[];
}

export interface LargeData {
  connections: number;
  rounds: number;
  rows: LargeRow[];
}

function spec(ctx: ScenarioContext, peer: RunningPeer, direction: Direction): LoadSpec {
  const { run, connections } = ctx.settings.large;
  return { ...benchRequest(direction, peer.baseUrl), host: peer.host, connections, ...run };
}

async function measure(ctx: ScenarioContext, peer: RunningPeer, direction: Direction): Promise<LargeSample> {
  const pid = peer.pid;
  const idle = pid === undefined ? null : treeRssBytes(pid);
  const cpuBefore = pid === undefined ? 0 : treeCpuSeconds(pid);
  const sampler = pid === undefined ? undefined : new RssSampler(pid).start();
  const result = await ctx.load.run(spec(ctx, peer, direction));
  const peak = sampler?.stop();
  // One MiB per request either way.
  const mib = result.requests;
  const cpuMsPerMiB = pid === undefined || mib === 0 ? null : ((treeCpuSeconds(pid) - cpuBefore) * 1000) / mib;
  return {
    mibPerS: result.rps,
    p99Ms: result.latencyMs.p99,
    errors: result.errors,
    cpuMsPerMiB,
    rssIdleMiB: idle === null ? null : idle / MIB,
    rssPeakMiB: peak === undefined ? null : peak / MIB,
  };
}

const nullableMedian = (values: Array<number | null>): number | null => {
  const present = values.filter((v): v is number => v !== null);
  return present.length === 0 ? null : round(median(present));
};

function summarize(peer: PeerName, direction: Direction, samples: LargeSample[]): LargeRow {
  const peaks = samples.map((s) => s.rssPeakMiB).filter((v): v is number => v !== null);
  const idle = samples[0]?.rssIdleMiB ?? null;
  return {
    peer,
    direction,
    mibPerS: round(median(samples.map((s) => s.mibPerS))),
    p99Ms: round(median(samples.map((s) => s.p99Ms))),
    cpuMsPerMiB: nullableMedian(samples.map((s) => s.cpuMsPerMiB)),
    errors: samples.reduce((sum, s) => sum + s.errors, 0),
    rssIdleMiB: idle === null ? null : round(idle),
    rssPeakMiB: peaks.length === 0 ? null : round(Math.max(...peaks)),
    vsBare: null,
    roundsMiBPerS: samples.map((s) => round(s.mibPerS)),
  };
}

function render(data: LargeData): string {
  const header = ['peer', 'direction', 'MiB/s', 'vs bare (paired by round)', 'p99 ms', 'proxy CPU ms / MiB', 'errors', 'proxy RSS idle MiB', 'proxy RSS peak MiB'];
  const rows = data.rows.map((r) => [r.peer, r.direction, r.mibPerS, describePaired(r.vsBare), r.p99Ms, r.cpuMsPerMiB, r.errors, r.rssIdleMiB, r.rssPeakMiB]);
  return `1 MiB bodies over ${data.connections} keep-alive connections; median of ${data.rounds} interleaved round(s); RSS of the proxy's process tree sampled every 50 ms.\n\n${table(header, rows)}`;
}

export const largeScenario: Scenario = {
  name: 'large',
  title: '1 MiB download and upload',
  async run(ctx): Promise<ScenarioOutcome> {
    const { rounds, connections } = ctx.settings.large;
    const samples = new Map<string, LargeSample[]>();
    const key = (peer: string, direction: Direction): string => `${peer}@${direction}`;
    for (let r = 1; r <= rounds; r++) {
      for (const direction of DIRECTIONS) {
        for (const peer of ctx.peers) {
          const sample = await measure(ctx, peer, direction);
          ctx.log(`  round ${r} ${direction} ${peer.name}: ${Math.round(sample.mibPerS)} MiB/s, peak RSS ${sample.rssPeakMiB === null ? '–' : Math.round(sample.rssPeakMiB)} MiB`);
          const list = samples.get(key(peer.name, direction)) ?? [];
          list.push(sample);
          samples.set(key(peer.name, direction), list);
        }
      }
    }
    const rows: LargeRow[] = [];
    for (const direction of DIRECTIONS) {
      for (const peer of ctx.peers) rows.push(summarize(peer.name, direction, samples.get(key(peer.name, direction)) ?? []));
    }
    for (const row of rows) {
      const bare = rows.find((r) => r.peer === 'bare-http-proxy' && r.direction === row.direction);
      if (bare !== undefined && row.peer !== 'bare-http-proxy') row.vsBare = pairedRatio(bare.roundsMiBPerS, row.roundsMiBPerS);
    }
    const data: LargeData = { connections, rounds, rows };
    return { data, markdown: render(data) };
  },
};
