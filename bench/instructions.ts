/**
 * Instructions per request, counted instead of timed: each Node-based peer runs under
 * `valgrind --tool=callgrind` with V8 single-threaded, takes a warm-up load, has its counters
 * zeroed, then a measured load, and callgrind dumps what that load cost in user-space
 * instructions (JavaScript, V8's compiler and GC, libuv). On a quiet machine five runs of
 * Switchboard came out within 0.8 % of each other, where the CPU scenario's /proc ticks on
 * shared cores spread ±15 %; a run beside the full test suite came out 21 % higher, and with
 * V8's helper threads two runs were 17 % apart (how much collecting and compiling falls inside
 * the window depends on timing). What it misses is the kernel: the syscalls, which `strace -c`
 * shows are the same for every Node peer (2 reads, 1 write, 1 writev per small GET).
 *
 *   npm run build && node dist/bench/instructions.js [--peers bare-http-proxy,switchboard] [--warmup N] [--requests N]
 *
 * About 2 minutes per peer (valgrind runs node 30–50× slower). Only small GETs are counted: a
 * 1 MiB body's count follows how the bytes happened to be cut into socket reads, and two runs
 * of the same upload through Switchboard came out 3.2 and 4.6 million instructions.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Backends } from './backends';
import { hasCommand, runToCompletion } from './child';
import { ensureTools } from './install';
import { benchRequest, chooseLoadGenerator } from './load';
import { APP_HOST, type PeerContext, type PeerName, type RunningPeer } from './peers/peer';
import { scriptPeer } from './peers/script-peer';
import { startSwitchboard } from './peers/switchboard';

const PEERS = ['bare-http-proxy', 'fastify-http-proxy', 'undici-forwarder', 'switchboard'] as const;
type CountedPeer = (typeof PEERS)[number];

interface Options {
  peers: CountedPeer[];
  warmup: number;
  requests: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { peers: ['bare-http-proxy', 'switchboard'], warmup: 3000, requests: 2000 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value = ''] = [argv[i], argv[i + 1]];
    if (flag === '--peers') {
      const names = value.split(',');
      const unknown = names.find((n) => !(PEERS as readonly string[]).includes(n));
      if (unknown !== undefined) throw new Error(`--peers: ${unknown} is not one of ${PEERS.join(', ')}`);
      options.peers = names as CountedPeer[];
    } else if (flag === '--warmup' || flag === '--requests') {
      const n = Number(value);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag}: expected a positive integer`);
      options[flag === '--warmup' ? 'warmup' : 'requests'] = n;
    } else {
      throw new Error(`unknown option ${flag} (--peers, --warmup, --requests)`);
    }
  }
  return options;
}

async function callgrindControl(args: string[]): Promise<void> {
  const result = await runToCompletion('callgrind_control', args, 60_000);
  if (result.code !== 0) throw new Error(`callgrind_control ${args.join(' ')}: ${result.stderr.trim()}`);
}

/** The `summary:` (total instructions) of the newest dump callgrind wrote for `pid`. */
function dumpedInstructions(outDir: string, pid: number): number {
  const text = readFileSync(path.join(outDir, `callgrind.${pid}.out.1`), 'utf8');
  const match = /^summary:\s+(\d+)/m.exec(text);
  if (!match) throw new Error(`no summary in callgrind's dump for ${pid}`);
  return Number(match[1]);
}

async function count(name: CountedPeer, options: Options, backends: Backends, outDir: string): Promise<{ requests: number; instructions: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `switchboard-instructions-${name}-`));
  // V8 compiles and collects garbage on helper threads as their timing allows; single-threaded
  // and run alone, the same load costs nearly the same instructions run after run.
  const nodeLauncher = ['valgrind', '--tool=callgrind', '--smc-check=all-non-file', '-q', `--callgrind-out-file=${outDir}/callgrind.%p.out`, process.execPath, '--single-threaded'];
  const ctx: PeerContext = { backends, dir, mode: 'all-in-one', log: (line) => console.error(line), nodeLauncher };
  let peer: RunningPeer | undefined;
  try {
    const started = name === 'switchboard' ? await startSwitchboard(ctx, { dataDir: path.join(dir, 'data') }) : await scriptPeer(name as PeerName, `${name}-script.js`).start(ctx);
    peer = started;
    const pid = started.pid as number;
    const load = chooseLoadGenerator(await hasCommand('wrk'));
    const run = (requests: number) => load.run({ ...benchRequest('small', started.baseUrl), host: APP_HOST, connections: 8, requests });
    await run(options.warmup);
    await callgrindControl(['--zero', String(pid)]);
    const measured = await run(options.requests);
    if (measured.errors > 0) throw new Error(`${name}: ${measured.errors} errors in the measured load`);
    await callgrindControl(['--dump=measured', String(pid)]);
    return { requests: measured.requests, instructions: dumpedInstructions(outDir, pid) };
  } finally {
    await peer?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const tools = await ensureTools(['valgrind', 'callgrind_control'], true, (line) => console.error(line));
  if (tools.missing.size > 0) throw new Error(`valgrind is needed: ${[...tools.missing.values()].join('; ')}`);
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-callgrind-'));
  const backends = await Backends.start();
  const rows: Array<{ peer: CountedPeer; perRequest: number }> = [];
  try {
    for (const name of options.peers) {
      const { requests, instructions } = await count(name, options, backends, outDir);
      rows.push({ peer: name, perRequest: instructions / requests });
      console.error(`${name}: ${instructions} instructions over ${requests} requests`);
    }
  } finally {
    await backends.stop();
    rmSync(outDir, { recursive: true, force: true });
  }
  const bare = rows.find((r) => r.peer === 'bare-http-proxy')?.perRequest;
  console.log(`small GETs: ${options.requests} measured requests after ${options.warmup} to warm up, 8 connections`);
  console.log('| peer | instructions / request | vs bare http-proxy |');
  console.log('| --- | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.peer} | ${Math.round(r.perRequest)} | ${bare === undefined ? '–' : `${(r.perRequest / bare).toFixed(3)}×`} |`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
