/**
 * (b) CPU per request of each proxy process: CPU-seconds (utime + stime of the process tree,
 * from /proc) spent while serving a fixed number of requests. On a small shared machine this
 * is fairer than throughput, which depends on who else got the cores.
 */
import { treeCpuSeconds } from '../cpu';
import type { PeerName, RunningPeer } from '../peers/peer';
import { describePaired, median, pairedMedian, pairedRatio, round, type PairedRatio } from '../stats';
import { type Scenario, type ScenarioContext, type ScenarioOutcome, table, times } from './scenario';

export interface CpuRow {
  peer: PeerName;
  requests: number;
  cpuSeconds: number;
  usPerRequest: number;
  errors: number;
  vsBare: number | null;
  vsNginx: number | null;
  roundsUs: number[];
}

export interface CpuData {
  requestsPerRun: number;
  connections: number;
  rounds: number;
  rows: CpuRow[];
  /** When both ran: switchboard-access-log's µs CPU per request over switchboard's, paired by round. */
  accessLogCost: PairedRatio | null;
}

/** CPU-seconds the proxy used while the load generator sent `requests` requests. */
export async function measureCpuPerRequest(
  ctx: ScenarioContext,
  peer: { baseUrl: string; host: string; pid: number },
  requests: number,
  connections: number,
): Promise<{ requests: number; cpuSeconds: number; errors: number }> {
  const before = treeCpuSeconds(peer.pid);
  const result = await ctx.load.run({ url: `${peer.baseUrl}/small`, host: peer.host, connections, requests });
  const cpuSeconds = treeCpuSeconds(peer.pid) - before;
  return { requests: result.requests, cpuSeconds, errors: result.errors };
}

function proxies(peers: RunningPeer[]): Array<RunningPeer & { pid: number }> {
  return peers.filter((p): p is RunningPeer & { pid: number } => p.pid !== undefined);
}

function render(data: CpuData): string {
  const header = ['peer', 'requests', 'CPU s', 'µs CPU / request', 'vs bare http-proxy', 'vs nginx', 'errors'];
  const rows = data.rows.map((r) => [r.peer, r.requests, r.cpuSeconds, r.usPerRequest, times(r.vsBare), times(r.vsNginx), r.errors]);
  return (
    `${data.requestsPerRun} requests per run over ${data.connections} connections; CPU of the proxy's process tree only; ` +
    `median of ${data.rounds} interleaved round(s); ratios are the median of each round's ratio. /proc counts in 10 ms ticks.\n\n${table(header, rows)}` +
    (data.accessLogCost === null ? '' : `\nCPU per request with the access log on vs off, round by round: ${describePaired(data.accessLogCost)}.\n`)
  );
}

export const cpuScenario: Scenario = {
  name: 'cpu',
  title: 'CPU per request',
  async run(ctx): Promise<ScenarioOutcome> {
    const { requests, connections, rounds } = ctx.settings.cpu;
    const measured = new Map<PeerName, Array<{ requests: number; cpuSeconds: number; errors: number }>>();
    for (let r = 1; r <= rounds; r++) {
      for (const peer of proxies(ctx.peers)) {
        const m = await measureCpuPerRequest(ctx, peer, requests, connections);
        ctx.log(`  round ${r} ${peer.name}: ${((m.cpuSeconds / m.requests) * 1e6).toFixed(1)} µs CPU/request`);
        measured.set(peer.name, [...(measured.get(peer.name) ?? []), m]);
      }
    }
    const rows: CpuRow[] = [...measured].map(([peer, runs]) => {
      const perRequest = runs.map((m) => (m.cpuSeconds / Math.max(1, m.requests)) * 1e6);
      return {
        peer,
        requests: median(runs.map((m) => m.requests)),
        cpuSeconds: round(median(runs.map((m) => m.cpuSeconds))),
        usPerRequest: round(median(perRequest)),
        errors: runs.reduce((sum, m) => sum + m.errors, 0),
        vsBare: null,
        vsNginx: null,
        roundsUs: perRequest.map((v) => round(v)),
      };
    });
    const roundsOf = (peer: PeerName): number[] | undefined => rows.find((r) => r.peer === peer)?.roundsUs;
    for (const row of rows) {
      row.vsBare = pairedMedian(roundsOf('bare-http-proxy'), row.roundsUs);
      row.vsNginx = pairedMedian(roundsOf('nginx'), row.roundsUs);
    }
    const off = rows.find((r) => r.peer === 'switchboard');
    const on = rows.find((r) => r.peer === 'switchboard-access-log');
    const accessLogCost = off !== undefined && on !== undefined ? pairedRatio(off.roundsUs, on.roundsUs) : null;
    const data: CpuData = { requestsPerRun: requests, connections, rounds, rows, accessLogCost };
    return { data, markdown: render(data) };
  },
};
