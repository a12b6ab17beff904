/**
 * The benchmark harness runs end to end on a tiny setting: `--quick` (a few hundred requests),
 * direct + bare http-proxy + Switchboard, small GETs and propagation. Benchmarks are not tests:
 * this proves only that the harness works and writes its three files with numbers in them.
 * It forces autocannon so it never depends on wrk, nginx or HAProxy being installed; other
 * tests cover the wrk path when wrk happens to be there, and distributed mode side by side
 * with all-in-one when etcd and redis-server are.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';

const RUN_JS = path.resolve(__dirname, '..', '..', 'bench', 'run.js');
const tempDirs: string[] = [];

after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  outDir: string;
}

/** Runs the harness into a fresh temp dir; kills it (and so, via watchdogs, its children) after `timeoutMs`. */
function runBench(args: string[], timeoutMs = 90_000): Promise<Run> {
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-bench-smoke-'));
  tempDirs.push(outDir);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUN_JS, ...args, '--out', outDir, '--no-install'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, outDir });
    });
  });
}

function resultFiles(outDir: string): { md: string; json: string; svg: string } {
  const names = readdirSync(outDir);
  const pick = (ext: string): string => {
    const name = names.find((n) => /^\d{4}-\d{2}-\d{2}\./.test(n) && n.endsWith(ext));
    assert.ok(name, `no <date>${ext} in ${outDir} (found: ${names.join(', ')})`);
    return path.join(outDir, name);
  };
  return { md: pick('.md'), json: pick('.json'), svg: pick('.svg') };
}

interface SmallRowJson {
  peer: string;
  rps: unknown;
  p50Ms: unknown;
  p99Ms: unknown;
  errors: unknown;
}

interface PropagationRowJson {
  mode: string;
  proxies: unknown;
  registrations: unknown;
  timeouts: unknown;
  p50Ms: unknown;
  p99Ms: unknown;
}

interface ReportJson {
  environment: { loadGenerator: string };
  peers: Array<{ name: string; status: string; reason?: string }>;
  scenarios: Array<{ name: string; error?: string; data: Record<string, unknown> }>;
}

function scenario(report: ReportJson, name: string): Record<string, unknown> {
  const found = report.scenarios.find((s) => s.name === name);
  assert.ok(found, `scenario ${name} missing from the JSON`);
  assert.equal(found.error, undefined, `scenario ${name} failed: ${found.error}`);
  return found.data;
}

function assertPositiveNumber(value: unknown, what: string): void {
  assert.equal(typeof value, 'number', `${what} is not a number: ${JSON.stringify(value)}`);
  assert.ok(Number.isFinite(value) && (value as number) > 0, `${what} is not a positive number: ${value}`);
}

/** Latencies may be 0: autocannon reports whole milliseconds. */
function assertNonNegativeNumber(value: unknown, what: string): void {
  assert.equal(typeof value, 'number', `${what} is not a number: ${JSON.stringify(value)}`);
  assert.ok(Number.isFinite(value) && (value as number) >= 0, `${what} is not a number ≥ 0: ${value}`);
}

function assertPropagationRow(report: ReportJson, mode: string, proxies: number): void {
  const rows = scenario(report, 'propagation').rows as PropagationRowJson[];
  const row = rows.find((r) => r.mode === mode);
  assert.ok(row, `no propagation row for ${mode} (rows: ${JSON.stringify(rows)})`);
  assert.equal(row.proxies, proxies);
  assert.equal(row.timeouts, 0);
  assertPositiveNumber(row.registrations, `${mode} propagation registrations`);
  assertNonNegativeNumber(row.p50Ms, `${mode} propagation p50`);
  assertNonNegativeNumber(row.p99Ms, `${mode} propagation p99`);
}

function assertSmallNumbers(report: ReportJson, peers: string[]): void {
  const rows = scenario(report, 'small').rows as SmallRowJson[];
  for (const peer of peers) {
    const row = rows.find((r) => r.peer === peer);
    assert.ok(row, `no small-GET row for ${peer}`);
    assertPositiveNumber(row.rps, `${peer} req/s`);
    assertNonNegativeNumber(row.p50Ms, `${peer} p50`);
    assertNonNegativeNumber(row.p99Ms, `${peer} p99`);
    assert.equal(row.errors, 0, `${peer} had errors`);
  }
}

test('quick bench of direct, bare http-proxy and switchboard writes md, json and svg with numbers for every peer', async () => {
  const peers = ['direct', 'bare-http-proxy', 'switchboard'];
  const run = await runBench(['--quick', '--loadgen', 'autocannon', '--modes', 'all-in-one', '--peers', peers.join(','), '--scenarios', 'small,propagation']);
  assert.equal(run.code, 0, `harness exited ${run.code}:\n${run.stderr}`);
  const files = resultFiles(run.outDir);
  const report = JSON.parse(readFileSync(files.json, 'utf8')) as ReportJson;

  assert.equal(report.environment.loadGenerator, 'autocannon');
  assert.deepEqual(
    report.peers.map((p) => [p.name, p.status, p.reason ?? '']),
    peers.map((p) => [p, 'ok', '']),
  );
  assertSmallNumbers(report, peers);
  assertPropagationRow(report, 'all-in-one', 1);

  const md = readFileSync(files.md, 'utf8');
  for (const peer of peers) assert.match(md, new RegExp(`\\| ${peer} \\|`), `${peer} missing from the markdown table`);
  assert.equal(run.stdout, md, 'the printed table is the saved one');
  const svg = readFileSync(files.svg, 'utf8');
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  for (const peer of peers) assert.match(svg, new RegExp(`>${peer}</text>`), `${peer} missing from the chart legend`);
});

function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function hasWrk(): boolean {
  return hasCommand('wrk');
}

test('with wrk installed the harness measures through wrk', { skip: hasWrk() ? false : 'wrk is not installed' }, async () => {
  const run = await runBench(['--quick', '--loadgen', 'wrk', '--peers', 'direct', '--scenarios', 'small']);
  assert.equal(run.code, 0, `harness exited ${run.code}:\n${run.stderr}`);
  const report = JSON.parse(readFileSync(resultFiles(run.outDir).json, 'utf8')) as ReportJson;
  assert.equal(report.environment.loadGenerator, 'wrk');
  assertSmallNumbers(report, ['direct']);
});

const distributedTools = hasCommand(process.env.ETCD_BIN ?? 'etcd') && hasCommand(process.env.REDIS_SERVER_BIN ?? 'redis-server');

test('with etcd and redis-server installed, propagation runs in both modes and reports them side by side', { skip: distributedTools ? false : 'etcd or redis-server is not installed' }, async () => {
  const run = await runBench(['--quick', '--loadgen', 'autocannon', '--modes', 'all-in-one,distributed', '--peers', 'switchboard', '--scenarios', 'propagation']);
  assert.equal(run.code, 0, `harness exited ${run.code}:\n${run.stderr}`);
  const report = JSON.parse(readFileSync(resultFiles(run.outDir).json, 'utf8')) as ReportJson;
  assert.deepEqual(
    report.peers.map((p) => [p.name, p.status, p.reason ?? '']),
    [['switchboard (all-in-one)', 'ok', ''], ['switchboard (distributed)', 'ok', '']],
  );
  assertPropagationRow(report, 'all-in-one', 1);
  assertPropagationRow(report, 'distributed', 2);
  assert.match(run.stdout, /\| all-in-one \| 1 \|[^\n]*\n\| distributed \| 2 \|/, 'one propagation table with a row per mode');
});
