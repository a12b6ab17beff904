/**
 * Registry write throughput as the catalog grows: registers N instances through the Consul
 * API of one in-process Registry (the leader: TTL loop, check runner and publisher running)
 * and prints registrations/s over the last window before each mark. A per-write cost that
 * grows with the catalog shows up as a falling rate; O(changed) work keeps it flat.
 *
 *   node dist/bench/registry-write.js [--store memory|embedded] [--instances 30000]
 *        [--marks 1000,10000,30000] [--window 1000] [--concurrency 32] [--checks none|ttl|http]
 *        [--per-service 10] [--budget-s 300]
 *
 * Profile it with `node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/registry-write.js`.
 * Everything listens on 127.0.0.1; HTTP checks (`--checks http`) target a closed local port
 * at a one-day interval, so they are scheduled but almost never run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LocalBus } from '../src/bus/local-bus';
import { silentLogger } from '../src/log';
import { Registry } from '../src/registry/registry';
import { EmbeddedStore } from '../src/registry/store/embedded-store';
import { MemoryStore } from '../test/helpers/memory-store';
import type { Store } from '../src/registry/store/store';
import { monotonicMs } from './clock';
import { httpRequest, keepAliveAgent } from './http';
import { registrySettings } from '../test/helpers/registry-fixtures';

interface Options {
  store: 'memory' | 'embedded';
  instances: number;
  marks: number[];
  window: number;
  concurrency: number;
  checks: 'none' | 'ttl' | 'http';
  perService: number;
  /** Stop registering after this long, reporting how far it got. */
  budgetMs: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      store: { type: 'string', default: 'memory' },
      instances: { type: 'string', default: '30000' },
      marks: { type: 'string', default: '1000,10000,30000' },
      window: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '32' },
      checks: { type: 'string', default: 'ttl' },
      'per-service': { type: 'string', default: '10' },
      'budget-s': { type: 'string', default: '300' },
    },
  });
  const store = values.store === 'embedded' ? 'embedded' : 'memory';
  const checks = values.checks === 'none' || values.checks === 'http' ? values.checks : 'ttl';
  const instances = Number(values.instances);
  const marks = String(values.marks)
    .split(',')
    .map(Number)
    .filter((m) => m > 0 && m <= instances);
  return {
    store,
    instances,
    marks,
    window: Number(values.window),
    concurrency: Number(values.concurrency),
    checks,
    perService: Number(values['per-service']),
    budgetMs: Number(values['budget-s']) * 1000,
  };
}

/** The body a Consul client would PUT; instance k belongs to service k / perService. */
function registration(k: number, options: Options): string {
  const id = `svc-${Math.floor(k / options.perService)}-${k}`;
  const body: Record<string, unknown> = { ID: id, Name: `svc-${Math.floor(k / options.perService)}`, Address: '127.0.0.1', Port: 20000 + (k % 10000) };
  if (options.checks === 'ttl') body.Check = { CheckID: `ttl:${id}`, TTL: '1h', Status: 'passing' };
  if (options.checks === 'http') body.Check = { CheckID: `http:${id}`, HTTP: 'http://127.0.0.1:1/health', Interval: '24h' };
  return JSON.stringify(body);
}

async function openStore(options: Options): Promise<{ store: Store; cleanup: () => void }> {
  if (options.store === 'memory') {
    const store = new MemoryStore();
    await store.open();
    return { store, cleanup: () => undefined };
  }
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sb-registry-write-'));
  const store = new EmbeddedStore({ dataDir });
  await store.open();
  return { store, cleanup: () => rmSync(dataDir, { recursive: true, force: true }) };
}

/**
 * Registers instances 0..n-1 with `concurrency` PUTs in flight, calling `progress` after
 * each, until done or the time budget runs out; returns how many were registered.
 */
async function registerAll(baseUrl: string, options: Options, progress: (done: number) => void): Promise<number> {
  const agent = keepAliveAgent(options.concurrency);
  const stopAt = monotonicMs() + options.budgetMs;
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < options.instances && monotonicMs() < stopAt) {
      const k = next++;
      const body = registration(k, options);
      const res = await httpRequest(`${baseUrl}/v1/agent/service/register`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body,
        agent,
        timeoutMs: 60_000,
      });
      if (res.status !== 200) throw new Error(`register ${k}: HTTP ${res.status} ${res.body.slice(0, 200)}`);
      progress(++done);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    return done;
  } finally {
    agent.destroy();
  }
}

async function main(): Promise<void> {
  const options = parseOptions();
  const { store, cleanup } = await openStore(options);
  const registry = new Registry({ store, bus: new LocalBus(), logger: silentLogger(), ...registrySettings({ maxWait: 60_000 }) });
  /** Wall and CPU time (this process: client and registry) when each mark's window began. */
  const windowStarts = new Map<number, { wallMs: number; cpuUs: number }>();
  const cpuUs = () => {
    const { user, system } = process.cpuUsage();
    return user + system;
  };
  try {
    await registry.start();
    console.log(`store=${options.store} checks=${options.checks} concurrency=${options.concurrency} per-service=${options.perService}`);
    const started = { wallMs: monotonicMs(), cpuUs: cpuUs() };
    const registered = await registerAll(`http://${registry.address}`, options, (done) => {
      for (const mark of options.marks) if (done === Math.max(0, mark - options.window)) windowStarts.set(mark, { wallMs: monotonicMs(), cpuUs: cpuUs() });
      if (!options.marks.includes(done)) return;
      const window = Math.min(options.window, done);
      const from = windowStarts.get(done) ?? started;
      const perSecond = Math.round((window * 1000) / (monotonicMs() - from.wallMs));
      const cpuPer = Math.round((cpuUs() - from.cpuUs) / window);
      console.log(`  at ${done.toLocaleString('en-US')} instances: ${perSecond.toLocaleString('en-US')} registrations/s, ${cpuPer} µs CPU each (last ${window})`);
    });
    const total = (monotonicMs() - started.wallMs) / 1000;
    const outOf = registered < options.instances ? ` of ${options.instances.toLocaleString('en-US')} (time budget ran out)` : '';
    console.log(`  total: ${registered.toLocaleString('en-US')}${outOf} in ${total.toFixed(1)} s = ${Math.round(registered / total).toLocaleString('en-US')}/s; catalog has ${registry.view.serviceNames().length} services`);
  } finally {
    await registry.stop();
    await store.close();
    cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
