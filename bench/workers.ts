/**
 * `switchboard proxy --workers N` side by side for several N: keep-alive GETs of the 64-byte
 * `/small` body through each, rounds interleaved (N=1, N=2, N=1, N=2 …), medians reported.
 * The proxies are the distributed-mode role over a registry with the embedded store and a
 * Redis bus (the `all` role has no workers).
 *
 *   node dist/bench/workers.js [--workers=1,2] [--sockets=shared,reuseport] [--connections=32,128] [--seconds=5] [--rounds=3] [--cpu-requests=20000]
 *
 * `--sockets`: how N > 1 workers share the port (proxy.workerSockets): `shared` (node:cluster's
 * primary accepts and hands connections round robin) and `reuseport` (each worker binds the
 * port, the kernel spreads connections; Node ≥ 22.12 — run this script with such a node).
 *
 * Two numbers per N: requests/s with p50/p99 at each connection count, and µs of CPU per
 * request (utime+stime of the proxy's whole process tree, primary included, from /proc, for a
 * fixed request count). Load generator (wrk, one thread, else autocannon), backend and
 * proxies share the machine's cores: with 2 cores, two workers compete with the load
 * generator and the backend, so throughput gains are bounded by what is left over.
 */
import { rmSync } from 'node:fs';
import os from 'node:os';
import { Backends } from './backends';
import { hasCommand } from './child';
import { treeCpuSeconds } from './cpu';
import { chooseLoadGenerator, type LoadGenerator, type LoadResult } from './load';
import { median } from './stats';
import { makeTempDir, waitFor } from '../test/helpers/child';
import { register, viaProxy } from '../test/helpers/distributed';
import { startRedis, type RedisHandle } from '../test/helpers/redis';
import { RoleProcess } from '../test/helpers/role-process';

const SERVICE = 'app';
const HOST = `${SERVICE}.svc`;

type Sockets = 'shared' | 'reuseport';

interface Options {
  workers: number[];
  sockets: Sockets[];
  connections: number[];
  seconds: number;
  rounds: number;
  cpuRequests: number;
}

function parseOptions(argv: string[]): Options {
  const raw = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const numbers = (name: string, fallback: number[]): number[] => {
    const text = raw(name);
    if (text === undefined) return fallback;
    const values = text.split(',').map(Number);
    if (values.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--${name} must be whole numbers ≥ 1, comma-separated`);
    return values;
  };
  const [seconds] = numbers('seconds', [5]);
  const [rounds] = numbers('rounds', [3]);
  const [cpuRequests] = numbers('cpu-requests', [20_000]);
  const sockets = (raw('sockets') ?? 'shared').split(',') as Sockets[];
  if (sockets.some((m) => m !== 'shared' && m !== 'reuseport')) throw new Error('--sockets must be shared and/or reuseport');
  return { workers: numbers('workers', [1, 2]), sockets, connections: numbers('connections', [32, 128]), seconds, rounds, cpuRequests };
}

/** Each proxy to compare: one worker, then every N > 1 with each way of sharing the port. */
function variants(options: Options): Array<{ label: string; args: string[] }> {
  return options.workers.flatMap((n) =>
    n === 1 ? [{ label: '1', args: ['--workers=1'] }] : options.sockets.map((m) => ({ label: options.sockets.length > 1 ? `${n} ${m}` : `${n}`, args: [`--workers=${n}`, `--worker-sockets=${m}`] })),
  );
}

interface Setup {
  backends?: Backends;
  redis?: RedisHandle;
  dataDir?: string;
  registry?: RoleProcess;
  proxies: Map<string, RoleProcess>;
}

/** Fills `setup` as it goes, so that stopAll() can clean up after a failed start too. */
async function startAll(setup: Setup, options: Options): Promise<void> {
  const backends = (setup.backends = await Backends.start());
  const redis = (setup.redis = await startRedis());
  const common = [`--redis=${redis.url}`, '--log-level=info'];
  setup.dataDir = makeTempDir('bench-workers');
  const registry = (setup.registry = await RoleProcess.start('registry', ['--store=embedded', `--data-dir=${setup.dataDir}`, ...common]));
  const reply = await register(registry, { id: 'app-1', service: SERVICE, port: backends.appPort });
  if (reply.status !== 200) throw new Error(`register: ${reply.status} ${reply.body}`);
  for (const { label, args } of variants(options)) {
    const proxy = await RoleProcess.start('proxy', [...args, `--registry=${registry.url('api', '')}`, ...common]);
    setup.proxies.set(label, proxy);
    await waitFor(`the workers=${label} proxy to route ${SERVICE}`, async () => (await viaProxy(proxy, SERVICE, '/small')).status === 200, 15_000);
  }
}

async function stopAll(setup: Setup): Promise<void> {
  await Promise.all([...setup.proxies.values()].map((p) => p.cleanup()));
  await setup.registry?.cleanup();
  await setup.redis?.destroy();
  await setup.backends?.stop();
  if (setup.dataDir) rmSync(setup.dataDir, { recursive: true, force: true });
}

interface Samples {
  throughput: Map<string, LoadResult[]>;
  cpuUs: Map<string, number[]>;
}

async function measure(setup: Setup, options: Options, load: LoadGenerator): Promise<Samples> {
  const samples: Samples = { throughput: new Map(), cpuUs: new Map() };
  const push = <K, V>(map: Map<K, V[]>, key: K, value: V): void => void map.set(key, [...(map.get(key) ?? []), value]);
  for (let round = 1; round <= options.rounds; round++) {
    for (const connections of options.connections) {
      for (const [n, proxy] of setup.proxies) {
        const result = await load.run({ url: proxy.url('proxy', '/small'), host: HOST, connections, durationMs: options.seconds * 1000 });
        process.stderr.write(`round ${round} workers=${n} c=${connections}: ${Math.round(result.rps)} req/s, p99 ${result.latencyMs.p99} ms, errors ${result.errors}\n`);
        push(samples.throughput, `${n}/${connections}`, result);
      }
    }
    for (const [n, proxy] of setup.proxies) {
      const before = treeCpuSeconds(proxy.pid);
      const result = await load.run({ url: proxy.url('proxy', '/small'), host: HOST, connections: 32, requests: options.cpuRequests });
      const us = ((treeCpuSeconds(proxy.pid) - before) / Math.max(1, result.requests)) * 1e6;
      process.stderr.write(`round ${round} workers=${n}: ${us.toFixed(1)} µs CPU/request\n`);
      push(samples.cpuUs, n, us);
    }
  }
  return samples;
}

function render(samples: Samples, options: Options, load: LoadGenerator): string {
  const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits });
  const lines = [
    `Keep-alive GETs of /small through \`switchboard proxy --workers N\`; median of ${options.rounds} interleaved round(s) of ${options.seconds} s; ` +
      `${load.name}; ${os.cpus().length} cores shared by load generator, backend and proxy.`,
    '',
    '| workers | conns | req/s | p50 ms | p99 ms | errors | req/s vs the first row |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const labels = variants(options).map((v) => v.label);
  for (const connections of options.connections) {
    const base = median((samples.throughput.get(`${labels[0]}/${connections}`) ?? []).map((r) => r.rps));
    for (const n of labels) {
      const runs = samples.throughput.get(`${n}/${connections}`) ?? [];
      const rps = median(runs.map((r) => r.rps));
      const errors = runs.reduce((sum, r) => sum + r.errors, 0);
      lines.push(`| ${n} | ${connections} | ${fmt(rps)} | ${fmt(median(runs.map((r) => r.latencyMs.p50)), 2)} | ${fmt(median(runs.map((r) => r.latencyMs.p99)), 2)} | ${errors} | ${(rps / base).toFixed(2)}× |`);
    }
  }
  lines.push('', `CPU of the proxy's process tree for ${fmt(options.cpuRequests)} requests over 32 connections (median):`, '', '| workers | µs CPU / request |', '| ---: | ---: |');
  for (const n of labels) lines.push(`| ${n} | ${fmt(median(samples.cpuUs.get(n) ?? []), 1)} |`);
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const load = chooseLoadGenerator(await hasCommand('wrk'));
  const setup: Setup = { proxies: new Map() };
  try {
    await startAll(setup, options);
    const samples = await measure(setup, options, load);
    process.stdout.write(render(samples, options, load));
  } finally {
    await stopAll(setup);
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
