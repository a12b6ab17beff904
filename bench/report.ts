/**
 * Results on disk: bench/results/<YYYY-MM-DD>.md (the tables), .json (every number) and .svg
 * (throughput and p99 per peer). A second run on the same day replaces the first.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderChart } from './chart';
import type { SmallData } from './scenarios/small';

export interface PeerStatus {
  name: string;
  status: 'ok' | 'skipped';
  reason?: string;
}

export interface SectionResult {
  name: string;
  title: string;
  data: object;
  markdown: string;
  error?: string;
}

export interface BenchReport {
  version: 1;
  date: string;
  startedAt: string;
  durationS: number;
  environment: { cpus: number; cpuModel: string; node: string; platform: string; loadGenerator: string; mode: string; quick: boolean };
  peers: PeerStatus[];
  scenarios: SectionResult[];
}

export function environment(loadGenerator: string, mode: string, quick: boolean): BenchReport['environment'] {
  const cpus = os.cpus();
  return { cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', node: process.version, platform: `${os.platform()} ${os.release()}`, loadGenerator, mode, quick };
}

export function renderMarkdown(report: BenchReport): string {
  const env = report.environment;
  const lines = [
    `# Switchboard benchmark — ${report.date}`,
    '',
    `${env.cpus} × ${env.cpuModel}, Node ${env.node}, ${env.platform}; load generator ${env.loadGenerator}; mode ${env.mode}${env.quick ? '; **quick run (not representative)**' : ''}; took ${Math.round(report.durationS)} s.`,
    'Load generator, backends and proxy share the machine, so absolute numbers are low; compare ratios.',
    '',
    ...report.peers.map((p) => `- ${p.name}: ${p.status === 'ok' ? 'ran' : `skipped — ${p.reason}`}`),
  ];
  for (const s of report.scenarios) {
    lines.push('', `## ${s.title}`, '', s.error ? `Failed: ${s.error}\n` : s.markdown);
  }
  return lines.join('\n').trimEnd() + '\n';
}

/** Writes the three files; returns their paths. */
export function writeReport(outDir: string, report: BenchReport): { md: string; json: string; svg: string } {
  mkdirSync(outDir, { recursive: true });
  const base = path.join(outDir, report.date);
  const files = { md: `${base}.md`, json: `${base}.json`, svg: `${base}.svg` };
  writeFileSync(files.md, renderMarkdown(report));
  writeFileSync(files.json, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(files.svg, chartFor(report));
  return files;
}

function chartFor(report: BenchReport): string {
  const small = report.scenarios.find((s) => s.name === 'small' && !s.error && 'rows' in s.data);
  const caption = `Switchboard benchmark ${report.date}: small GETs, median of interleaved rounds (${report.environment.loadGenerator})`;
  if (!small) {
    return renderChart({ loadGenerator: report.environment.loadGenerator, concurrencies: [], rounds: 0, rows: [], accessLogCost: [], switchboardVs: [] }, `${caption} — small scenario not run`);
  }
  return renderChart(small.data as SmallData, caption);
}
