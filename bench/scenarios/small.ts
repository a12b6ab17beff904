/**
 * (a) Small GETs over keep-alive connections at several concurrencies. Runs are interleaved
 * (round 1: A B C, round 2: A B C, …) so that a noisy neighbour hurts every peer alike, and
 * each number is the median over rounds.
 */
import type { LoadResult } from '../load';
import type { PeerName, RunningPeer } from '../peers/peer';
import { describePaired, median, pairedMedian, pairedRatio, round, type PairedRatio } from '../stats';
import { type Scenario, type ScenarioContext, type ScenarioOutcome, table, times } from './scenario';

export interface SmallRow {
  peer: PeerName;
  concurrency: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  errors: number;
  /** Ratios to other peers: the median of each round's ratio (rounds are interleaved, so paired). */
  rpsVsDirect: number | null;
  rpsVsBare: number | null;
  rpsVsNginx: number | null;
  p99VsDirect: number | null;
  p99VsBare: number | null;
  /** req/s and p99 of every round, for anyone who wants the spread. */
  roundsRps: number[];
  roundsP99Ms: number[];
}

export interface SmallData {
  loadGenerator: string;
  concurrencies: number[];
  rounds: number;
  rows: SmallRow[];
  /** When both ran: switchboard-access-log's req/s over switchboard's, paired by round, per concurrency. */
  accessLogCost: Array<{ concurrency: number; rps: PairedRatio | null }>;
  /** Switchboard's req/s over every other peer's, paired by round: the forwarding issue's targets read off directly. */
  switchboardVs: Array<{ peer: PeerName; concurrency: number; rps: PairedRatio | null }>;
}

async function warmUp(ctx: ScenarioContext, peer: RunningPeer): Promise<void> {
  const { warmupRequests, concurrencies } = ctx.settings.small;
  const connections = Math.min(32, Math.max(...concurrencies));
  await ctx.load.run({ url: `${peer.baseUrl}/small`, host: peer.host, connections, requests: warmupRequests });
}

type Samples = Map<string, LoadResult[]>;
const key = (peer: string, c: number): string => `${peer}@${c}`;

async function interleavedRounds(ctx: ScenarioContext): Promise<Samples> {
  const { rounds, concurrencies, run } = ctx.settings.small;
  const samples: Samples = new Map();
  for (let r = 1; r <= rounds; r++) {
    for (const c of concurrencies) {
      for (const peer of ctx.peers) {
        const result = await ctx.load.run({ url: `${peer.baseUrl}/small`, host: peer.host, connections: c, ...run });
        ctx.log(`  round ${r} c=${c} ${peer.name}: ${Math.round(result.rps)} req/s, p99 ${result.latencyMs.p99.toFixed(2)} ms`);
        const list = samples.get(key(peer.name, c)) ?? [];
        list.push(result);
        samples.set(key(peer.name, c), list);
      }
    }
  }
  return samples;
}

function summarize(peer: PeerName, concurrency: number, results: LoadResult[]): SmallRow {
  return {
    peer,
    concurrency,
    rps: round(median(results.map((r) => r.rps))),
    p50Ms: round(median(results.map((r) => r.latencyMs.p50))),
    p90Ms: round(median(results.map((r) => r.latencyMs.p90))),
    p99Ms: round(median(results.map((r) => r.latencyMs.p99))),
    errors: results.reduce((sum, r) => sum + r.errors, 0),
    rpsVsDirect: null,
    rpsVsBare: null,
    rpsVsNginx: null,
    p99VsDirect: null,
    p99VsBare: null,
    roundsRps: results.map((r) => Math.round(r.rps)),
    roundsP99Ms: results.map((r) => round(r.latencyMs.p99)),
  };
}

function addRatios(rows: SmallRow[]): void {
  const find = (peer: PeerName, c: number): SmallRow | undefined => rows.find((r) => r.peer === peer && r.concurrency === c);
  for (const row of rows) {
    const direct = find('direct', row.concurrency);
    const bare = find('bare-http-proxy', row.concurrency);
    const nginx = find('nginx', row.concurrency);
    row.rpsVsDirect = pairedMedian(direct?.roundsRps, row.roundsRps);
    row.rpsVsBare = pairedMedian(bare?.roundsRps, row.roundsRps);
    row.rpsVsNginx = pairedMedian(nginx?.roundsRps, row.roundsRps);
    row.p99VsDirect = pairedMedian(direct?.roundsP99Ms, row.roundsP99Ms);
    row.p99VsBare = pairedMedian(bare?.roundsP99Ms, row.roundsP99Ms);
  }
}

/** What turning the access log on costs in req/s: the two Switchboard peers' rounds, paired. */
function accessLogCost(rows: SmallRow[]): SmallData['accessLogCost'] {
  const on = rows.filter((r) => r.peer === 'switchboard-access-log');
  return on.flatMap((row) => {
    const off = rows.find((r) => r.peer === 'switchboard' && r.concurrency === row.concurrency);
    return off === undefined ? [] : [{ concurrency: row.concurrency, rps: pairedRatio(off.roundsRps, row.roundsRps) }];
  });
}

function switchboardVs(rows: SmallRow[]): SmallData['switchboardVs'] {
  return rows.flatMap((other) => {
    if (other.peer === 'switchboard') return [];
    const ours = rows.find((r) => r.peer === 'switchboard' && r.concurrency === other.concurrency);
    return ours === undefined ? [] : [{ peer: other.peer, concurrency: other.concurrency, rps: pairedRatio(other.roundsRps, ours.roundsRps) }];
  });
}

function renderSwitchboardVs(data: SmallData): string {
  if (data.switchboardVs.length === 0) return '';
  const peers = [...new Set(data.switchboardVs.map((v) => v.peer))];
  const cell = (peer: PeerName, c: number): string => describePaired(data.switchboardVs.find((v) => v.peer === peer && v.concurrency === c)?.rps ?? null);
  return `\nSwitchboard's req/s over each peer's, round by round (median and range):\n\n${table(
    ['peer', ...data.concurrencies.map((c) => `${c} conns`)],
    peers.map((peer) => [peer, ...data.concurrencies.map((c) => cell(peer, c))]),
  )}`;
}

function render(data: SmallData): string {
  const header = ['peer', 'conns', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'req/s vs direct', 'req/s vs bare', 'req/s vs nginx', 'p99 vs bare'];
  const rows = data.rows.map((r) => [r.peer, r.concurrency, r.rps, r.p50Ms, r.p90Ms, r.p99Ms, r.errors, times(r.rpsVsDirect), times(r.rpsVsBare), times(r.rpsVsNginx), times(r.p99VsBare)]);
  const cost =
    data.accessLogCost.length === 0
      ? ''
      : `\nAccess log on vs off (switchboard-access-log / switchboard req/s, round by round; median and range):\n\n${table(
          ['conns', 'req/s with the access log'],
          data.accessLogCost.map((c) => [c.concurrency, describePaired(c.rps)]),
        )}`;
  return `Keep-alive GETs of a 64-byte body; median of ${data.rounds} interleaved round(s) per cell; ratios are the median of each round's ratio; load generator: ${data.loadGenerator}.\n\n${table(header, rows)}${renderSwitchboardVs(data)}${cost}`;
}

export const smallScenario: Scenario = {
  name: 'small',
  title: 'Small GETs: throughput and latency',
  async run(ctx): Promise<ScenarioOutcome> {
    for (const peer of ctx.peers) await warmUp(ctx, peer);
    const samples = await interleavedRounds(ctx);
    const rows: SmallRow[] = [];
    for (const c of ctx.settings.small.concurrencies) {
      for (const peer of ctx.peers) rows.push(summarize(peer.name, c, samples.get(key(peer.name, c)) ?? []));
    }
    addRatios(rows);
    const data: SmallData = {
      loadGenerator: ctx.load.name,
      concurrencies: ctx.settings.small.concurrencies,
      rounds: ctx.settings.small.rounds,
      rows,
      accessLogCost: accessLogCost(rows),
      switchboardVs: switchboardVs(rows),
    };
    return { data, markdown: render(data) };
  },
};
