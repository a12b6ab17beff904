/**
 * (d) Churn: while load runs through Switchboard, instances of one service are registered and
 * deregistered continuously (register the new one, then deregister the oldest, like a rolling
 * deploy). A deregistered instance keeps serving for a drain period, as a graceful one would,
 * so a request routed to it late shows up as *stale*, not as an error:
 *   - errors (non-2xx, resets, timeouts) must be 0;
 *   - stale = requests that reached an instance later than its deregistration ack + allowance
 *     (the backend stamps every arrival with CLOCK_MONOTONIC, as does the harness).
 * Runs in every mode; in distributed mode registrations go through the registries in turn and
 * the load goes through the first proxy.
 */
import { monotonicMs } from '../clock';
import type { LoadResult } from '../load';
import type { Mode } from '../peers/peer';
import { waitUntilRouted, type SwitchboardPeer } from '../peers/switchboard';
import type { RegistryClient } from '../registry-client';
import { round } from '../stats';
import { perModeScenario } from './per-mode';
import { type ScenarioContext, table } from './scenario';

const SERVICE = 'churn';
const HOST = `${SERVICE}.svc`;

export interface ChurnData {
  mode: Mode;
  durationS: number;
  requests: number;
  rps: number;
  errors: number;
  registrations: number;
  deregistrations: number;
  allowanceMs: number;
  staleRequests: number;
  /** Largest gap between a deregistration ack and a request arriving at that instance. */
  maxLateMs: number | null;
}

interface Deregistered {
  id: string;
  ackAt: number;
}

/** Registers and deregisters instances until told to stop; remembers every deregistration ack. */
class RollingDeploy {
  private next = 0;
  private writes = 0;
  private readonly live: string[] = [];
  readonly deregistered: Deregistered[] = [];
  private readonly closing: Array<Promise<void>> = [];
  registrations = 0;

  constructor(
    private readonly ctx: ScenarioContext,
    private readonly sb: SwitchboardPeer,
  ) {}

  async addInstance(): Promise<void> {
    const id = `${SERVICE}-${this.next++}`;
    const port = await this.ctx.backends.open(id, { track: true });
    await this.nextRegistry().register({ id, service: SERVICE, port });
    this.registrations++;
    this.live.push(id);
  }

  async removeOldest(): Promise<void> {
    const id = this.live.shift();
    if (id === undefined) return;
    await this.nextRegistry().deregister(id);
    this.deregistered.push({ id, ackAt: monotonicMs() });
    const { drainMs } = this.ctx.settings.churn;
    this.closing.push(new Promise((resolve) => setTimeout(resolve, drainMs)).then(() => this.ctx.backends.close(id)));
  }

  async run(untilMs: number): Promise<void> {
    const { intervalMs } = this.ctx.settings.churn;
    while (monotonicMs() < untilMs) {
      const started = monotonicMs();
      await this.addInstance();
      await this.removeOldest();
      const rest = intervalMs - (monotonicMs() - started);
      if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
    }
  }

  /** Writes go through every registry in turn (there is one in all-in-one mode). */
  private nextRegistry(): RegistryClient {
    return this.sb.registries[this.writes++ % this.sb.registries.length];
  }

  /** Deregister and close what is left (after the load stopped). */
  async finish(): Promise<void> {
    const left = [...this.live];
    for (const id of left) await this.sb.registry.deregister(id).catch(() => undefined);
    await Promise.all(this.closing);
    await Promise.all(left.map((id) => this.ctx.backends.close(id)));
    this.live.length = 0;
  }
}

async function countStale(ctx: ScenarioContext, deregistered: Deregistered[]): Promise<{ stale: number; maxLateMs: number | null }> {
  const arrivals = await ctx.backends.arrivals(deregistered.map((d) => d.id));
  let stale = 0;
  let maxLateMs: number | null = null;
  for (const { id, ackAt } of deregistered) {
    for (const at of arrivals[id] ?? []) {
      if (at <= ackAt) continue;
      maxLateMs = Math.max(maxLateMs ?? 0, at - ackAt);
      if (at > ackAt + ctx.settings.churn.allowanceMs) stale++;
    }
  }
  return { stale, maxLateMs };
}

function render(rows: ChurnData[]): string {
  const allowances = [...new Set(rows.map((d) => d.allowanceMs))].join('/');
  const header = ['mode', 'seconds', 'requests', 'req/s', 'errors', 'registrations', 'deregistrations', `stale (> ${allowances} ms after ack)`, 'latest arrival after ack ms'];
  const cells = rows.map((d) => [d.mode, d.durationS, d.requests, d.rps, d.errors, d.registrations, d.deregistrations, d.staleRequests, d.maxLateMs]);
  return `Rolling register/deregister under load through Switchboard; deregistered instances drain before closing.\n\n${table(header, cells)}`;
}

async function measure(ctx: ScenarioContext, sb: SwitchboardPeer): Promise<ChurnData> {
  const { durationMs, connections, instances } = ctx.settings.churn;
  const deploy = new RollingDeploy(ctx, sb);
  let loadDone: Promise<LoadResult> | undefined;
  try {
    for (let i = 0; i < instances; i++) await deploy.addInstance();
    await waitUntilRouted(sb.baseUrl, HOST);
    loadDone = ctx.load.run({ url: `${sb.baseUrl}/small`, host: HOST, connections, durationMs });
    // Stop churning a little before the load ends, so the tail is steady rather than cut mid-change.
    await deploy.run(monotonicMs() + durationMs - 500);
    const result = await loadDone;
    const { stale, maxLateMs } = await countStale(ctx, deploy.deregistered);
    const data: ChurnData = {
      mode: ctx.mode,
      durationS: round(result.durationS),
      requests: result.requests,
      rps: round(result.rps),
      errors: result.errors,
      registrations: deploy.registrations,
      deregistrations: deploy.deregistered.length,
      allowanceMs: ctx.settings.churn.allowanceMs,
      staleRequests: stale,
      maxLateMs: maxLateMs === null ? null : round(maxLateMs),
    };
    ctx.log(`  ${ctx.mode}: ${data.errors} errors, ${data.staleRequests} stale of ${data.requests} requests`);
    return data;
  } finally {
    // A failed registration must not leave the load running into the next scenario.
    await loadDone?.catch(() => undefined);
    await deploy.finish();
  }
}

export const churnScenario = perModeScenario<ChurnData>({ name: 'churn', title: 'Churn under load', measure, render });
