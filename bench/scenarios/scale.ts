/**
 * (f) Scale: a Switchboard of its own is filled with a large catalog (10,000 services /
 * 100,000 instances in the full run) through the public API — many concurrent PUTs, bounded —
 * and we report what that costs: registration time, proxy RSS, how long a restart takes to
 * load the whole catalog and route again (full sync), and CPU per request on a hot service
 * compared with the same measurement on an empty catalog.
 */
import path from 'node:path';
import { monotonicMs } from '../clock';
import { treeRssBytes } from '../cpu';
import { APP_HOST, type PeerContext } from '../peers/peer';
import { startProxyRole, startSwitchboard, waitUntilRouted, type SwitchboardPeer } from '../peers/switchboard';
import { startRedis } from '../../test/helpers/redis';
import { hasCommand, waitFor } from '../child';
import { httpRequest } from '../http';
import type { InstanceSpec } from '../registry-client';
import { percentile, round, roundedRatio } from '../stats';
import { measureCpuPerRequest } from './cpu';
import { type Scenario, type ScenarioContext, type ScenarioOutcome, skipped, table } from './scenario';

const MIB = 1024 * 1024;
/** Registered last and pointing at a live backend: once it routes, the proxy has caught up. */
const PROBE_SERVICE = 'scale-probe';

export interface ScaleData {
  mode: string;
  targetServices: number;
  targetInstances: number;
  registeredInstances: number;
  /** False when the time budget ran out before every instance was registered. */
  complete: boolean;
  registerSeconds: number;
  registerPerSecond: number;
  /** Latency of one registration PUT while filling (compactions of the embedded store included). */
  registerP50Ms: number;
  registerP99Ms: number;
  registerMaxMs: number;
  /** Last registration ack → the probe service routes through the proxy. */
  catchUpMs: number;
  rssEmptyMiB: number;
  /** Right after the last registration. */
  rssFullMiB: number;
  /** The same process left idle `settle.ms`: where its RSS ended, and after how long it got within 5 % of that. */
  rssSettled: RssWatch;
  /** Restart on the full data dir: spawn → listeners up, and spawn → first routed request. */
  restartListeningMs: number;
  fullSyncMs: number;
  rssAfterRestartMiB: number;
  cpuUsPerRequestEmpty: number;
  cpuUsPerRequestFull: number;
  cpuFullVsEmpty: number | null;
  /**
   * A `switchboard proxy` of its own syncing the full catalog from the filled registry: RSS
   * once ready, its peak over `proxySettleMs` after that, and where it ends (once the sync's
   * buffers are collected). Null without redis-server (the proxy role needs a Redis).
   */
  proxyRole: { readyMiB: number; peakMiB: number; settledMiB: number; settleMs: number; readyMs: number } | null;
}

export interface RssWatch {
  peakMiB: number;
  endMiB: number;
  /** First sample within 5 % of the end (ms after the watch began). */
  reachedAfterMs: number;
  ms: number;
}

/** A process's RSS sampled every second for `ms`. */
async function watchRss(pid: number, ms: number): Promise<RssWatch> {
  const started = monotonicMs();
  const samples: Array<{ at: number; bytes: number }> = [{ at: 0, bytes: treeRssBytes(pid) }];
  while (monotonicMs() - started < ms) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    samples.push({ at: monotonicMs() - started, bytes: treeRssBytes(pid) });
  }
  const end = samples[samples.length - 1].bytes;
  const reached = samples.find((s) => s.bytes <= end * 1.05) ?? samples[samples.length - 1];
  const peak = samples.reduce((max, s) => Math.max(max, s.bytes), 0);
  return { peakMiB: round(peak / MIB), endMiB: round(end / MIB), reachedAfterMs: round(reached.at), ms };
}

/**
 * Instance `k` of the catalog: spread round-robin over the services, at a port nobody calls —
 * below Linux's ephemeral range (32768+), where the peer's own listeners are (the registry
 * refuses an instance at one of its listeners).
 */
function catalogInstance(k: number, services: number): InstanceSpec {
  const service = `svc-${String(k % services).padStart(5, '0')}`;
  return { id: `${service}-${Math.floor(k / services)}`, service, port: 10_000 + (k % 20_000) };
}

/** Registers instances 0..total-1 with `concurrency` PUTs in flight; stops at the deadline. Returns each PUT's latency. */
async function bulkRegister(sb: SwitchboardPeer, total: number, services: number, concurrency: number, deadline: number): Promise<number[]> {
  let next = 0;
  const latencies: number[] = [];
  const worker = async (): Promise<void> => {
    while (next < total && monotonicMs() < deadline) {
      const k = next++;
      const sent = monotonicMs();
      await sb.registry.register(catalogInstance(k, services));
      latencies.push(monotonicMs() - sent);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  return latencies;
}

async function cpuUsPerRequest(ctx: ScenarioContext, sb: SwitchboardPeer): Promise<number> {
  const { cpuRequests } = ctx.settings.scale;
  const m = await measureCpuPerRequest(ctx, { baseUrl: sb.baseUrl, host: APP_HOST, pid: sb.pid }, cpuRequests, ctx.settings.cpu.connections);
  if (m.errors > 0) throw new Error(`${m.errors} errors while measuring CPU per request`);
  return (m.cpuSeconds / Math.max(1, m.requests)) * 1e6;
}

type Filled = Pick<ScaleData, 'registeredInstances' | 'complete' | 'registerSeconds' | 'registerPerSecond' | 'registerP50Ms' | 'registerP99Ms' | 'registerMaxMs' | 'catchUpMs'>;

async function fillCatalog(ctx: ScenarioContext, sb: SwitchboardPeer): Promise<Filled> {
  const { services, instances, concurrency, budgetMs } = ctx.settings.scale;
  const started = monotonicMs();
  const latencies = await bulkRegister(sb, instances, services, concurrency, started + budgetMs);
  const registered = latencies.length;
  const registerSeconds = (monotonicMs() - started) / 1000;
  const probeAckAt = monotonicMs();
  await sb.registry.register({ id: `${PROBE_SERVICE}-1`, service: PROBE_SERVICE, port: ctx.backends.appPort });
  await waitUntilRouted(sb.baseUrl, `${PROBE_SERVICE}.svc`, 120_000);
  return {
    registeredInstances: registered,
    complete: registered === instances,
    registerSeconds: round(registerSeconds),
    registerPerSecond: round(registered / registerSeconds),
    registerP50Ms: round(percentile(latencies, 50)),
    registerP99Ms: round(percentile(latencies, 99)),
    registerMaxMs: round(latencies.reduce((a, b) => Math.max(a, b), 0)),
    catchUpMs: round(monotonicMs() - probeAckAt),
  };
}

/** Stop and start again on the same data dir; time until the proxy routes again. */
async function restart(pctx: PeerContext, sb: SwitchboardPeer, dataDir: string): Promise<{ peer: SwitchboardPeer; listeningMs: number; fullSyncMs: number }> {
  await sb.stop();
  const spawnedAt = monotonicMs();
  const peer = await startSwitchboard(pctx, { dataDir, registerApp: false });
  await waitUntilRouted(peer.baseUrl, APP_HOST, 120_000);
  return { peer, listeningMs: peer.startupMs, fullSyncMs: monotonicMs() - spawnedAt };
}

/** A proxy role against the filled registry: how big it is once it routes the whole catalog. */
async function weighProxyRole(sb: SwitchboardPeer, settleMs: number): Promise<ScaleData['proxyRole']> {
  if (!(await hasCommand('redis-server'))) return null;
  const redis = await startRedis();
  try {
    const started = monotonicMs();
    const proxy = await startProxyRole(sb.apiUrl, redis.url);
    try {
      await waitFor('the proxy role to sync the catalog', async () => (await httpRequest(`${proxy.adminUrl}/readyz`)).status === 200, 120_000);
      const readyMs = monotonicMs() - started;
      const ready = treeRssBytes(proxy.pid);
      const watched = await watchRss(proxy.pid, settleMs);
      return { readyMiB: round(ready / MIB), peakMiB: watched.peakMiB, settledMiB: watched.endMiB, settleMs, readyMs: round(readyMs) };
    } finally {
      await proxy.stop();
    }
  } finally {
    await redis.destroy();
  }
}

function render(d: ScaleData): string {
  const header = ['measure', 'value'];
  const rows: Array<[string, string | number | null]> = [
    ['instances registered', `${d.registeredInstances.toLocaleString('en-US')} of ${d.targetInstances.toLocaleString('en-US')} over ${d.targetServices.toLocaleString('en-US')} services${d.complete ? '' : ' (time budget ran out)'}`],
    ['registration time s (bounded concurrent PUTs)', d.registerSeconds],
    ['registrations / s', d.registerPerSecond],
    ['registration PUT latency p50 / p99 / max ms', `${d.registerP50Ms} / ${d.registerP99Ms} / ${d.registerMaxMs}`],
    ['last ack → routed (catch-up) ms', d.catchUpMs],
    ['RSS empty catalog MiB', d.rssEmptyMiB],
    ['RSS full catalog MiB, right after the fill', d.rssFullMiB],
    [
      'RSS full catalog MiB, left idle after the fill',
      `${d.rssSettled.endMiB} after ${d.rssSettled.ms / 1000} s (within 5 % of that from ${round(d.rssSettled.reachedAfterMs / 1000)} s on; V8's memory reducer)`,
    ],
    ['restart: spawn → listening ms', d.restartListeningMs],
    ['restart: spawn → routed (full sync) ms', d.fullSyncMs],
    ['RSS after restart MiB', d.rssAfterRestartMiB],
    ['µs CPU / request, empty catalog', d.cpuUsPerRequestEmpty],
    ['µs CPU / request, full catalog', d.cpuUsPerRequestFull],
    ['full vs empty', d.cpuFullVsEmpty === null ? null : `${d.cpuFullVsEmpty.toFixed(2)}×`],
    ['`switchboard proxy` on the full catalog: spawn → synced ms', d.proxyRole?.readyMs ?? 'skipped (no redis-server)'],
    [
      '`switchboard proxy` RSS MiB: synced / peak / settled',
      d.proxyRole === null ? 'skipped (no redis-server)' : `${d.proxyRole.readyMiB} / ${d.proxyRole.peakMiB} / ${d.proxyRole.settledMiB} (${d.proxyRole.settleMs / 1000} s after the sync)`,
    ],
  ];
  return `Mode: ${d.mode}. Catalog filled through the registry API.\n\n${table(header, rows)}`;
}

export const scaleScenario: Scenario = {
  name: 'scale',
  title: 'Large catalog',
  async run(ctx): Promise<ScenarioOutcome> {
    if (!ctx.switchboard) return skipped('needs the switchboard peer');
    // It restarts one process on its data dir; filling etcd with 100,000 instances is another benchmark.
    if (ctx.mode !== 'all-in-one') return skipped('all-in-one mode only');
    const pctx = ctx.newPeerContext('scale');
    const dataDir = path.join(pctx.dir, 'data');
    let sb = await startSwitchboard(pctx, { dataDir });
    try {
      const rssEmpty = treeRssBytes(sb.pid);
      const cpuEmpty = await cpuUsPerRequest(ctx, sb);
      ctx.log(`  empty catalog: ${cpuEmpty.toFixed(1)} µs CPU/request; registering ${ctx.settings.scale.instances} instances ...`);
      const filled = await fillCatalog(ctx, sb);
      ctx.log(`  registered ${filled.registeredInstances} in ${filled.registerSeconds} s`);
      const rssFull = treeRssBytes(sb.pid);
      ctx.log(`  RSS ${round(rssFull / MIB)} MiB; watching it for ${ctx.settings.scale.fillSettleMs / 1000} s idle ...`);
      const rssSettled = await watchRss(sb.pid, ctx.settings.scale.fillSettleMs);
      const cpuFull = await cpuUsPerRequest(ctx, sb);
      const proxyRole = await weighProxyRole(sb, ctx.settings.scale.proxySettleMs);
      const restarted = await restart(pctx, sb, dataDir);
      sb = restarted.peer;
      const data: ScaleData = {
        mode: ctx.mode,
        targetServices: ctx.settings.scale.services,
        targetInstances: ctx.settings.scale.instances,
        ...filled,
        rssEmptyMiB: round(rssEmpty / MIB),
        rssFullMiB: round(rssFull / MIB),
        rssSettled,
        restartListeningMs: round(restarted.listeningMs),
        fullSyncMs: round(restarted.fullSyncMs),
        rssAfterRestartMiB: round(treeRssBytes(sb.pid) / MIB),
        cpuUsPerRequestEmpty: round(cpuEmpty),
        cpuUsPerRequestFull: round(cpuFull),
        cpuFullVsEmpty: roundedRatio(cpuFull, cpuEmpty),
        proxyRole,
      };
      return { data, markdown: render(data) };
    } finally {
      await sb.stop();
    }
  },
};
