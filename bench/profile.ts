/**
 * Where the proxy's CPU goes per request: `switchboard all` runs under `node --cpu-prof`
 * while the load generator sends keep-alive GETs through it to the bench backend (loopback
 * only, bounded), then the profile is summarised as µs of CPU per request by function and
 * by file. This is how the fast path was tuned (issue "benchmark harness", item 5).
 *
 *   npm run build && node dist/bench/profile.js [--seconds 5] [--connections 32] [--top 30] [--out DIR] [--access-log] [--load small|download|upload]
 *
 * `--access-log` turns the proxy's access log on (JSON lines to a file in the run's dir), to see
 * what logging every request costs and where. `--load download|upload` sends 1 MiB bodies instead
 * of small GETs (the large scenario's requests), to see where a streamed body's CPU goes.
 *
 * The .cpuprofile is kept in the output dir (open it in Chrome DevTools for the call tree).
 * Sampling adds overhead and startup is included, so compare runs with each other, not with
 * the cpu scenario's numbers.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Backends } from './backends';
import { hasCommand } from './child';
import { REQUEST_KINDS, benchRequest, chooseLoadGenerator, type RequestKind } from './load';
import { APP_HOST } from './peers/peer';
import { startSwitchboard } from './peers/switchboard';

interface ProfileOptions {
  seconds: number;
  connections: number;
  top: number;
  outDir: string;
  accessLog: boolean;
  load: RequestKind;
}

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function parseArgs(argv: string[]): ProfileOptions {
  const options: ProfileOptions = { seconds: 5, connections: 32, top: 30, outDir: '', accessLog: false, load: 'small' };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--access-log') {
      options.accessLog = true;
      i--;
      continue;
    }
    if (flag === '--load') {
      if (!(REQUEST_KINDS as readonly string[]).includes(value ?? '')) throw new Error(`--load: expected one of ${REQUEST_KINDS.join(', ')}`);
      options.load = value as RequestKind;
      continue;
    }
    const n = Number(value);
    if (flag === '--out') options.outDir = path.resolve(value ?? '');
    else if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag}: expected a positive integer`);
    else if (flag === '--seconds') options.seconds = Math.min(n, 60);
    else if (flag === '--connections') options.connections = n;
    else if (flag === '--top') options.top = n;
    else throw new Error(`unknown option ${flag} (--seconds, --connections, --top, --out, --access-log, --load)`);
  }
  options.outDir ||= mkdtempSync(path.join(os.tmpdir(), 'switchboard-profile-'));
  return options;
}

/** Starts the backend and Switchboard under --cpu-prof, loads it, stops it; returns requests sent. */
async function profileUnderLoad(options: ProfileOptions, workDir: string): Promise<number> {
  const backends = await Backends.start();
  try {
    const ctx = { backends, dir: workDir, mode: 'all-in-one' as const, log: (line: string) => console.error(line) };
    const nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${options.outDir}`];
    const args = options.accessLog ? ['--access-log=true', `--access-log-path=${path.join(workDir, 'access.log')}`] : [];
    const peer = await startSwitchboard(ctx, { dataDir: path.join(workDir, 'data'), nodeArgs, args });
    try {
      const load = chooseLoadGenerator(await hasCommand('wrk'));
      const result = await load.run({
        ...benchRequest(options.load, peer.baseUrl),
        host: APP_HOST,
        connections: options.connections,
        durationMs: options.seconds * 1000,
      });
      console.log(`${load.name}: ${result.requests} requests, ${Math.round(result.rps)} req/s, ${result.errors} errors`);
      return result.requests;
    } finally {
      await peer.stop();
    }
  } finally {
    await backends.stop();
  }
}

function frameName(node: CpuProfileNode): { fn: string; file: string } {
  const { functionName, url, lineNumber } = node.callFrame;
  const local = url.replace(/^file:\/\//, '');
  const modules = local.lastIndexOf('/node_modules/');
  const dist = local.indexOf('/dist/');
  const file = modules >= 0 ? local.slice(modules + 1) : dist >= 0 ? local.slice(dist + 1) : local || functionName;
  return { fn: `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`, file };
}

/** Self time per function and per file, in µs per request, idle excluded. */
function summarise(profile: CpuProfile, requests: number, top: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const dt = profile.timeDeltas[i] ?? 0;
    if (!node || node.callFrame.functionName === '(idle)') return;
    const { fn, file } = frameName(node);
    busy += dt;
    byFn.set(fn, (byFn.get(fn) ?? 0) + dt);
    byFile.set(file, (byFile.get(file) ?? 0) + dt);
  });
  const rows = (m: Map<string, number>, n: number): string =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => `${(us / requests).toFixed(2).padStart(8)} µs  ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${name}`)
      .join('\n');
  return [
    `busy (sampled, startup included): ${(busy / requests).toFixed(1)} µs per request over ${requests} requests`,
    '',
    'self time by function:',
    rows(byFn, top),
    '',
    'self time by file:',
    rows(byFile, 15),
  ].join('\n');
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  mkdirSync(options.outDir, { recursive: true });
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-profile-run-'));
  try {
    const requests = await profileUnderLoad(options, workDir);
    const file = readdirSync(options.outDir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined || requests === 0) throw new Error(`no profile or no requests (look in ${options.outDir})`);
    const profile = JSON.parse(readFileSync(path.join(options.outDir, file), 'utf8')) as CpuProfile;
    console.log(summarise(profile, requests, options.top));
    console.log(`\nprofile: ${path.join(options.outDir, file)}`);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
