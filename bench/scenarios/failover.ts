/**
 * (g) Registry failover, distributed mode only: kill -9 the leader registry (the one that runs
 * checks and publishes invalidations) and time until a survivor names itself leader through
 * /v1/status/leader; the etcd election lease TTL (3 s) bounds it. The killed registry is then
 * started again on the same ports, so the proxies' --registry lists and the harness's clients
 * stay valid for whatever runs next.
 */
import { waitFor } from '../../test/helpers/child';
import { leaderOf } from '../../test/helpers/distributed';
import type { RoleProcess } from '../../test/helpers/role-process';
import { monotonicMs } from '../clock';
import type { Mode } from '../peers/peer';
import { isDistributed } from '../peers/switchboard-distributed';
import type { SwitchboardPeer } from '../peers/switchboard';
import { median, round } from '../stats';
import { perModeScenario } from './per-mode';
import { type ScenarioContext, table } from './scenario';

export interface FailoverRow {
  mode: Mode;
  registries: number;
  /** kill -9 of the leader → a survivor leads, one per trial. */
  takeoverMs: number[];
  p50Ms: number;
  maxMs: number;
}

async function findLeader(alive: RoleProcess[]): Promise<{ leader: RoleProcess; survivor: RoleProcess }> {
  const leaderAddress = await leaderOf(alive[0]);
  const leader = alive.find((r) => r.address('api') === leaderAddress);
  const survivor = alive.find((r) => r !== leader);
  if (!leader || !survivor) throw new Error(`no leader among ${alive.length} registries (leader says "${leaderAddress}")`);
  return { leader, survivor };
}

/** One trial: the time from the kill until the survivor leads; then the killed one comes back. */
async function killLeader(sb: SwitchboardPeer, timeoutMs: number): Promise<number> {
  if (!isDistributed(sb)) throw new Error('failover needs the distributed topology');
  const { leader, survivor } = await findLeader(sb.topology.registries.filter((r) => r.running()));
  const killedAt = monotonicMs();
  await leader.kill('SIGKILL');
  await waitFor('a surviving registry to lead', async () => (await leaderOf(survivor)) === survivor.address('api'), timeoutMs);
  const tookMs = monotonicMs() - killedAt;
  await sb.topology.startRegistry([`--api-listen=${leader.address('api')}`, `--admin-listen=${leader.address('admin')}`]);
  return tookMs;
}

async function measure(ctx: ScenarioContext, sb: SwitchboardPeer): Promise<FailoverRow> {
  const { trials, timeoutMs } = ctx.settings.failover;
  const takeoverMs: number[] = [];
  for (let i = 0; i < trials; i++) takeoverMs.push(round(await killLeader(sb, timeoutMs)));
  ctx.log(`  ${ctx.mode}: leader takeover ${takeoverMs.map((ms) => `${Math.round(ms)} ms`).join(', ')}`);
  return { mode: ctx.mode, registries: sb.registries.length, takeoverMs, p50Ms: round(median(takeoverMs)), maxMs: Math.max(...takeoverMs) };
}

function render(rows: FailoverRow[]): string {
  const header = ['mode', 'registries', 'leader kills', 'takeover p50 ms', 'max ms', 'each ms'];
  const cells = rows.map((d) => [d.mode, d.registries, d.takeoverMs.length, d.p50Ms, d.maxMs, d.takeoverMs.map((ms) => Math.round(ms).toLocaleString('en-US')).join(', ')]);
  return `kill -9 of the leader registry → a survivor leads (/v1/status/leader); election lease TTL 3 s.\n\n${table(header, cells)}`;
}

export const failoverScenario = perModeScenario<FailoverRow>({
  name: 'failover',
  title: 'Registry failover',
  unsupported: (mode) => (mode === 'all-in-one' ? 'one process, no other registry to take over' : undefined),
  measure,
  render,
});
