/**
 * (h) Slow and hung instances: steady keep-alive GETs over a service of three instances
 * (2 ms each) while one of them hangs (accepts, never answers), one turns 20× slower, or all
 * three do. Run side by side against `switchboard all` with the default policy and against
 * one with the two defaults this is about turned off (learned per-try timeout, latency-aware
 * weights) — which is how the proxy behaved before them, and how Envoy/Traefik/fabio do by
 * default. Reported per case: failed requests, p99 before / during (from `settleMs` after the
 * fault on) / over the whole fault, the slowest request, the faulty instance's share of
 * traffic once settled, and when it last got a request (hang: out of rotation).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { runLoad, type Outcome } from '../../test/helpers/load';
import { monotonicMs } from '../clock';
import { startSwitchboard, type SwitchboardPeer } from '../peers/switchboard';
import { round } from '../stats';
import { type Scenario, type ScenarioContext, type ScenarioOutcome, table } from './scenario';

type Fault = 'hang' | 'one-slow' | 'all-slow';
const FAULTS: Fault[] = ['hang', 'one-slow', 'all-slow'];

type Variant = 'defaults' | 'without';
const VARIANTS: Record<Variant, { label: string; policy: object }> = {
  defaults: { label: 'Switchboard, default policy', policy: {} },
  without: {
    label: 'Switchboard, learned timeout and latency weights off',
    policy: { retries: { adaptiveTimeout: { enabled: false } }, latencyAware: { enabled: false } },
  },
};

export interface SlowRow {
  variant: Variant;
  fault: Fault;
  requests: number;
  failed: number;
  p99BeforeMs: number;
  p99FaultMs: number;
  p99SettledMs: number;
  maxMs: number;
  /** The faulty instance's share of requests sent from `settleMs` after the fault on (%). */
  settledSharePercent: number | null;
  /** Last request that reached the faulty instance, ms after the fault; null = none after it. */
  lastArrivalMs: number | null;
}

export interface SlowData {
  connections: number;
  baseDelayMs: number;
  slowFactor: number;
  beforeMs: number;
  faultMs: number;
  settleMs: number;
  rows: SlowRow[];
}

function p99(outcomes: Outcome[]): number {
  const sorted = outcomes.map((o) => o.ms).sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]);
}

/** One case on its own service and instances, so cases do not see each other's health state. */
async function runCase(ctx: ScenarioContext, sb: SwitchboardPeer, variant: Variant, fault: Fault): Promise<SlowRow> {
  const { connections, baseDelayMs, slowFactor, beforeMs, faultMs, settleMs } = ctx.settings.slow;
  const service = `slow-${variant}-${fault}`;
  const ids = ['a', 'b', 'c'].map((x) => `${service}-${x}`);
  for (const id of ids) {
    const port = await ctx.backends.open(id, { track: true });
    await ctx.backends.behave(id, { delayMs: baseDelayMs });
    await sb.registry.register({ id, service, port });
  }
  const url = new URL(sb.baseUrl);
  const load = (stopAfterMs: number) =>
    runLoad({
      host: url.hostname,
      port: Number(url.port),
      hostHeader: `${service}.svc`,
      path: '/small',
      total: 1_000_000,
      stopAfterMs,
      concurrency: connections,
      idPrefix: service,
      backendHeader: 'x-instance',
      requestTimeoutMs: 10_000,
    });
  try {
    const before = await load(beforeMs);
    const faulty = fault === 'all-slow' ? ids : [ids[2]];
    const faultAt = monotonicMs();
    const faultAtPerf = performance.now();
    for (const id of faulty) await ctx.backends.behave(id, fault === 'hang' ? { hang: true } : { delayMs: baseDelayMs * slowFactor });
    const during = await load(faultMs);
    const settled = during.outcomes.filter((o) => o.sentAt >= faultAtPerf + settleMs);
    const arrivals = (await ctx.backends.arrivals([ids[2]]))[ids[2]].filter((t) => t > faultAt);
    const row: SlowRow = {
      variant,
      fault,
      requests: during.outcomes.length,
      failed: during.failures.length,
      p99BeforeMs: p99(before.outcomes),
      p99FaultMs: p99(during.outcomes),
      p99SettledMs: p99(settled),
      maxMs: round(Math.max(...during.outcomes.map((o) => o.ms))),
      settledSharePercent: fault === 'all-slow' || settled.length === 0 ? null : round((100 * settled.filter((o) => o.backend === ids[2]).length) / settled.length),
      lastArrivalMs: arrivals.length === 0 ? null : round(arrivals[arrivals.length - 1] - faultAt),
    };
    ctx.log(`  ${variant} ${fault}: ${row.failed} failed of ${row.requests}, p99 ${row.p99BeforeMs} → ${row.p99SettledMs} ms, max ${row.maxMs} ms`);
    return row;
  } finally {
    for (const id of ids) {
      await sb.registry.deregister(id).catch(() => undefined);
      await ctx.backends.close(id);
    }
  }
}

function render(data: SlowData): string {
  const header = ['case', 'policy', 'requests', 'failed', 'p99 before ms', 'p99 during ms', `p99 after ${data.settleMs / 1000} s ms`, 'slowest ms', 'faulty share after settle', 'last request to it (ms after fault)'];
  const rows = data.rows.map((r) => [
    r.fault,
    VARIANTS[r.variant].label,
    r.requests,
    r.failed,
    r.p99BeforeMs,
    r.p99FaultMs,
    r.p99SettledMs,
    r.maxMs,
    r.settledSharePercent === null ? null : `${r.settledSharePercent} %`,
    r.lastArrivalMs,
  ]);
  return (
    `Three instances answering in ${data.baseDelayMs} ms, ${data.connections} keep-alive connections; ${data.beforeMs / 1000} s of load, then the fault for ${data.faultMs / 1000} s: ` +
    `hang = one instance accepts and never answers; one-slow = one instance ${data.slowFactor}× slower; all-slow = every instance ${data.slowFactor}× slower. ` +
    `"During" is the whole fault; "after settle" is from ${data.settleMs / 1000} s after it on. The two policies run one after the other on the same machine, each on fresh instances. ` +
    `A client gives up after 10 s (the proxies' response timeout is 60 s).\n\n${table(header, rows)}`
  );
}

export const slowScenario: Scenario = {
  name: 'slow',
  title: 'Slow and hung instances',
  async run(ctx): Promise<ScenarioOutcome> {
    const settings = ctx.settings.slow;
    const rows: SlowRow[] = [];
    const peers = new Map<Variant, SwitchboardPeer>();
    try {
      for (const variant of Object.keys(VARIANTS) as Variant[]) {
        const peerCtx = ctx.newPeerContext(`slow-${variant}`);
        const configFile = path.join(peerCtx.dir, 'switchboard.json');
        writeFileSync(configFile, JSON.stringify({ proxy: { defaults: VARIANTS[variant].policy } }));
        peers.set(variant, await startSwitchboard(peerCtx, { dataDir: path.join(peerCtx.dir, 'data'), registerApp: false, args: ['--config', configFile] }));
      }
      // Interleaved: each fault against both policies before the next fault.
      for (const fault of FAULTS) for (const [variant, sb] of peers) rows.push(await runCase(ctx, sb, variant, fault));
    } finally {
      await Promise.all([...peers.values()].map((p) => p.stop()));
    }
    const data: SlowData = { ...settings, rows };
    return { data, markdown: render(data) };
  },
};
