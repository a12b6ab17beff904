/**
 * A scenario runs against the peers that started and returns its numbers (JSON) and its own
 * markdown section. Scenarios that exercise the registry take the Switchboard peer and the
 * mode it runs in, so distributed mode (etcd + Redis) reuses them unchanged: they run once
 * per mode of `--modes` and join their rows (see per-mode.ts).
 */
import type { Backends } from '../backends';
import type { LoadGenerator } from '../load';
import type { Mode, PeerContext, RunningPeer } from '../peers/peer';
import type { SwitchboardPeer } from '../peers/switchboard';
import type { BenchSettings } from '../settings';
import type { ModePart } from './per-mode';

export const SCENARIO_NAMES = ['small', 'cpu', 'large', 'churn', 'propagation', 'failover', 'slow', 'scale'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export interface ScenarioContext {
  settings: BenchSettings;
  mode: Mode;
  load: LoadGenerator;
  backends: Backends;
  /** Started peers, in the order they were asked for. */
  peers: RunningPeer[];
  /** The running Switchboard peer, when it started. */
  switchboard?: SwitchboardPeer;
  /** A fresh PeerContext (own temp dir) for scenarios that start a peer of their own. */
  newPeerContext(tag: string): PeerContext;
  log(line: string): void;
}

export interface ScenarioOutcome {
  /** Machine-readable numbers; goes into the JSON file under the scenario's name. */
  data: object;
  /** A markdown section (without the heading). */
  markdown: string;
}

export interface Scenario {
  name: ScenarioName;
  title: string;
  /** Set for scenarios that run again in every further mode; joins the modes into one section. */
  readonly perMode?: { join(parts: ModePart[]): ScenarioOutcome };
  run(ctx: ScenarioContext): Promise<ScenarioOutcome>;
}

export function skipped(reason: string): ScenarioOutcome {
  return { data: { skipped: reason }, markdown: `Skipped: ${reason}.\n` };
}

/** Markdown table from a header row and data rows. */
export function table(header: string[], rows: Array<Array<string | number | null>>): string {
  const cell = (v: string | number | null): string => (v === null ? '–' : typeof v === 'number' ? formatNumber(v) : v);
  const lines = [
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ];
  return lines.join('\n') + '\n';
}

/** Numbers for humans: thousands separated, at most 3 significant decimals. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (Number.isInteger(v) || Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** `1.23×` for ratios, `–` when there is nothing to compare with. */
export function times(v: number | null): string {
  return v === null ? '–' : `${v.toFixed(2)}×`;
}
