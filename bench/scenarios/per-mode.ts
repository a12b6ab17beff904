/**
 * Registry scenarios (churn, propagation, failover) depend on how Switchboard runs, so the
 * harness runs them once per mode of `--modes`, each time against that mode's Switchboard,
 * and joins what they measured into one table: one row per mode, side by side. A mode that
 * could not run leaves a line saying why instead of a row.
 *
 *   export const churnScenario = perModeScenario({ name: 'churn', title, measure, render });
 */
import type { Mode } from '../peers/peer';
import type { SwitchboardPeer } from '../peers/switchboard';
import type { Scenario, ScenarioContext, ScenarioName, ScenarioOutcome } from './scenario';

export interface ModeRow {
  mode: Mode;
}

/** What one mode of a per-mode scenario came to: its outcome's data, a failure, or a skip. */
export type ModePart = { mode: Mode } & ({ data: object } | { error: string } | { skipped: string });

/** The JSON of a per-mode scenario, in every mode and once joined. */
export interface PerModeData<R extends ModeRow> {
  rows: R[];
  /** `<mode>: skipped — why` or `<mode>: failed — error`, for the modes without a row. */
  notes: string[];
}

export interface PerModeSpec<R extends ModeRow> {
  name: ScenarioName;
  title: string;
  /** Why there is nothing to measure in `mode`; undefined when there is. */
  unsupported?(mode: Mode): string | undefined;
  measure(ctx: ScenarioContext, sb: SwitchboardPeer): Promise<R>;
  /** Caption and table for the rows (never empty). */
  render(rows: R[]): string;
}

function renderData<R extends ModeRow>(spec: PerModeSpec<R>, data: PerModeData<R>): string {
  const table = data.rows.length > 0 ? spec.render(data.rows).trimEnd() : '';
  const notes = data.notes.map((n) => `- ${n}`).join('\n');
  return [table, notes].filter((s) => s.length > 0).join('\n\n') + '\n';
}

/** A mode's rows, or a note saying why it has none. */
function partData<R extends ModeRow>(part: ModePart): PerModeData<R> {
  if ('error' in part) return { rows: [], notes: [`${part.mode}: failed — ${part.error}`] };
  if ('skipped' in part) return { rows: [], notes: [`${part.mode}: skipped — ${part.skipped}`] };
  return part.data as PerModeData<R>;
}

export function joinModes<R extends ModeRow>(parts: ModePart[]): PerModeData<R> {
  const each = parts.map((p) => partData<R>(p));
  return { rows: each.flatMap((d) => d.rows), notes: each.flatMap((d) => d.notes) };
}

export function perModeScenario<R extends ModeRow>(spec: PerModeSpec<R>): Scenario {
  const outcome = (data: PerModeData<R>): ScenarioOutcome => ({ data, markdown: renderData(spec, data) });
  return {
    name: spec.name,
    title: spec.title,
    perMode: { join: (parts) => outcome(joinModes<R>(parts)) },
    async run(ctx) {
      const sb = ctx.switchboard;
      const reason = sb ? spec.unsupported?.(ctx.mode) : 'needs the switchboard peer';
      if (!sb || reason !== undefined) return outcome({ rows: [], notes: [`${ctx.mode}: skipped — ${reason}`] });
      return outcome({ rows: [await spec.measure(ctx, sb)], notes: [] });
    },
  };
}
