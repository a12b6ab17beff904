/**
 * Registry write throughput as the catalog grows: registers N instances through the Consul
 * API of one in-process Registry (the leader: TTL loop, check runner and publisher running)
 * and prints registrations/s over the last window before each mark. A per-write cost that
 * grows with the catalog shows up as a falling rate; O(changed) work keeps it flat.
 *
 *   node dist/bench/registry-write.js [--store memory|embedded] [--instances 30000]
 *        [--marks 1000,10000,30000] [--window 1000] [--concurrency 32] [--checks none|ttl|http]
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
import { MemoryStore } from '../src/registry/store/memory-store';
import type { Store } from '../src/registry/store/store';
import { monotonicMs } from './clock';
import { httpRequest, keepAliveAgent } from './http';

interface Options {
  store: 'memory' | 'embedded';
  instances: number;
  marks: number[];
  window: number;
  concurrency: number;
  checks: 'none' | 'ttl' | 'http';
  perService: number;
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

/** Registers instances 0..n-1 with `concurrency` PUTs in flight; calls `progress` after each. */
async function registerAll(baseUrl: string, options: Options, progress: (done: number) => void): Promise<void> {
  const agent = keepAliveAgent(options.concurrency);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < options.instances) {
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
  } finally {
    agent.destroy();
  }
}

async function main(): Promise<void> {
  const options = parseOptions();
  const { store, cleanup } = await openStore(options);
  const registry = new Registry({ store, bus: new LocalBus(), logger: silentLogger(), api: { listen: '127.0.0.1:0', maxWaitMs: 60_000 } });
  const windowStarts = new Map<number, number>();
  try {
    await registry.start();
    console.log(`store=${options.store} checks=${options.checks} concurrency=${options.concurrency} per-service=${options.perService}`);
    const started = monotonicMs();
    await registerAll(`http://${registry.address}`, options, (done) => {
      for (const mark of options.marks) if (done === Math.max(0, mark - options.window)) windowStarts.set(mark, monotonicMs());
      if (!options.marks.includes(done)) return;
      const window = Math.min(options.window, done);
      const perSecond = Math.round((window * 1000) / (monotonicMs() - (windowStarts.get(done) ?? started)));
      console.log(`  at ${done.toLocaleString('en-US')} instances: ${perSecond.toLocaleString('en-US')} registrations/s (last ${window})`);
    });
    const total = (monotonicMs() - started) / 1000;
    console.log(`  total: ${options.instances.toLocaleString('en-US')} in ${total.toFixed(1)} s = ${Math.round(options.instances / total).toLocaleString('en-US')}/s; catalog has ${registry.view.serviceNames().length} services`);
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
