/**
 * The benchmark harness: `npm run bench [-- --quick]`. Starts the backends and every peer side
 * by side, runs the scenarios, prints a markdown report and writes it (with JSON and an SVG
 * chart) to bench/results/<date>.*. See bench/options.ts for the flags.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Backends } from './backends';
import { ensureTools } from './install';
import { chooseLoadGenerator, type LoadGenerator } from './load';
import { type BenchOptions, parseOptions, USAGE, UsageError } from './options';
import { bareHttpProxyPeer } from './peers/bare-http-proxy';
import { directPeer } from './peers/direct';
import { haproxyPeer } from './peers/haproxy';
import { nginxPeer } from './peers/nginx';
import type { PeerContext, PeerFactory, PeerName, RunningPeer } from './peers/peer';
import { type SwitchboardPeer, switchboardPeer } from './peers/switchboard';
import { type BenchReport, environment, type PeerStatus, renderMarkdown, type SectionResult, writeReport } from './report';
import { churnScenario } from './scenarios/churn';
import { cpuScenario } from './scenarios/cpu';
import { largeScenario } from './scenarios/large';
import { propagationScenario } from './scenarios/propagation';
import { scaleScenario } from './scenarios/scale';
import type { Scenario, ScenarioContext, ScenarioName } from './scenarios/scenario';
import { smallScenario } from './scenarios/small';

const SCENARIOS: Record<ScenarioName, Scenario> = {
  small: smallScenario,
  cpu: cpuScenario,
  large: largeScenario,
  churn: churnScenario,
  propagation: propagationScenario,
  scale: scaleScenario,
};

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function factories(options: BenchOptions): PeerFactory[] {
  const all: Record<PeerName, PeerFactory> = {
    direct: directPeer,
    'bare-http-proxy': bareHttpProxyPeer,
    switchboard: switchboardPeer(options.mode),
    nginx: nginxPeer,
    haproxy: haproxyPeer,
  };
  return options.peers.map((name) => all[name]);
}

interface Setup {
  load: LoadGenerator;
  missingTools: Map<string, string>;
}

async function prepareTools(options: BenchOptions, peers: PeerFactory[]): Promise<Setup> {
  const tools = peers.flatMap((p) => p.needs);
  if (options.loadgen !== 'autocannon') tools.push('wrk');
  const { available, missing } = await ensureTools(tools, options.install, log);
  if (options.loadgen === 'wrk' && !available.has('wrk')) throw new UsageError(missing.get('wrk') ?? 'wrk is missing');
  const load = chooseLoadGenerator(available.has('wrk'), options.loadgen === 'auto' ? undefined : options.loadgen);
  if (missing.has('wrk') && load.name === 'autocannon') log(`wrk: ${missing.get('wrk')}; using autocannon`);
  return { load, missingTools: missing };
}

async function startPeers(factories: PeerFactory[], setup: Setup, peerContext: (tag: string) => PeerContext): Promise<{ running: RunningPeer[]; statuses: PeerStatus[] }> {
  const running: RunningPeer[] = [];
  const statuses: PeerStatus[] = [];
  for (const factory of factories) {
    const ctx = peerContext(factory.name);
    const missingTool = factory.needs.map((t) => setup.missingTools.get(t)).find((m) => m !== undefined);
    const reason = missingTool ?? (await factory.unavailable(ctx));
    if (reason !== undefined) {
      log(`skipping ${factory.name}: ${reason}`);
      statuses.push({ name: factory.name, status: 'skipped', reason });
      continue;
    }
    try {
      running.push(await factory.start(ctx));
      statuses.push({ name: factory.name, status: 'ok' });
      log(`started ${factory.name}`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log(`skipping ${factory.name}: failed to start: ${message}`);
      statuses.push({ name: factory.name, status: 'skipped', reason: `failed to start: ${oneLine(message)}` });
    }
  }
  return { running, statuses };
}

/** First and last line of a multi-line error (the last is usually the child's own complaint). */
function oneLine(message: string): string {
  const lines = message.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const first = lines[0] ?? '';
  const last = lines[lines.length - 1] ?? '';
  return (lines.length > 1 ? `${first} … ${last}` : first).slice(0, 400);
}

async function runScenarios(options: BenchOptions, ctx: ScenarioContext): Promise<SectionResult[]> {
  const results: SectionResult[] = [];
  for (const name of options.scenarios) {
    const scenario = SCENARIOS[name];
    log(`scenario ${name}: ${scenario.title}`);
    try {
      const outcome = await scenario.run(ctx);
      results.push({ name, title: scenario.title, ...outcome });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log(`scenario ${name} failed: ${message}`);
      results.push({ name, title: scenario.title, data: { error: oneLine(message) }, markdown: '', error: oneLine(message) });
    }
  }
  return results;
}

async function bench(options: BenchOptions): Promise<BenchReport> {
  const started = new Date();
  const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'switchboard-bench-'));
  const removeTmpRoot = (): void => rmSync(tmpRoot, { recursive: true, force: true });
  // Also on an abrupt exit (Ctrl-C, a crash), when the finally below never runs.
  process.once('exit', removeTmpRoot);
  const peerContext = (backends: Backends) => (tag: string): PeerContext => {
    const dir = mkdtempSync(path.join(tmpRoot, `${tag}-`));
    return { backends, dir, mode: options.mode, log };
  };
  let backends: Backends | undefined;
  let running: RunningPeer[] = [];
  try {
    const peers = factories(options);
    const setup = await prepareTools(options, peers);
    backends = await Backends.start();
    const newPeerContext = peerContext(backends);
    const peerSet = await startPeers(peers, setup, newPeerContext);
    running = peerSet.running;
    const ctx: ScenarioContext = {
      settings: options.settings,
      mode: options.mode,
      load: setup.load,
      backends,
      peers: running,
      switchboard: running.find((p): p is SwitchboardPeer => p.name === 'switchboard'),
      newPeerContext,
      log,
    };
    const scenarios = await runScenarios(options, ctx);
    return {
      version: 1,
      date: started.toISOString().slice(0, 10),
      startedAt: started.toISOString(),
      durationS: (Date.now() - started.getTime()) / 1000,
      environment: environment(setup.load.name, options.mode, options.settings.quick),
      peers: peerSet.statuses,
      scenarios,
    };
  } finally {
    for (const peer of running) await peer.stop().catch(() => undefined);
    await backends?.stop();
    removeTmpRoot();
  }
}

export async function main(argv: string[]): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(err.message === '' ? USAGE : `${err.message}\n${USAGE}`);
    return err.message === '' ? 0 : 2;
  }
  // Ctrl-C: run the exit hooks that kill our children (their watchdogs would too).
  process.once('SIGINT', () => process.exit(130));
  process.once('SIGTERM', () => process.exit(143));
  const report = await bench(options);
  mkdirSync(options.outDir, { recursive: true });
  const files = writeReport(options.outDir, report);
  process.stdout.write(renderMarkdown(report));
  log(`wrote ${files.md}, ${files.json}, ${files.svg}`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
