/**
 * The benchmark harness: `npm run bench [-- --quick]`. Starts the backends and every peer side
 * by side, runs the scenarios, prints a markdown report and writes it (with JSON and an SVG
 * chart) to bench/results/<date>.*. See bench/options.ts for the flags.
 *
 * Switchboard modes run one after the other (a pass each): the first mode with every peer and
 * scenario, each further mode with only its own Switchboard and the per-mode scenarios, whose
 * rows are then joined into one table per scenario (scenarios/per-mode.ts).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Backends } from './backends';
import { ensureTools } from './install';
import { chooseLoadGenerator, type LoadGenerator } from './load';
import { type BenchOptions, parseOptions, USAGE, UsageError } from './options';
import { directPeer } from './peers/direct';
import { haproxyPeer } from './peers/haproxy';
import { nginxPeer } from './peers/nginx';
import { scriptPeer } from './peers/script-peer';
import type { Mode, PeerContext, PeerFactory, PeerName, RunningPeer } from './peers/peer';
import { accessLogPeer, type SwitchboardPeer, switchboardPeer } from './peers/switchboard';
import { type BenchReport, environment, type PeerStatus, renderMarkdown, type SectionResult, writeReport } from './report';
import { churnScenario } from './scenarios/churn';
import { cpuScenario } from './scenarios/cpu';
import { failoverScenario } from './scenarios/failover';
import { largeScenario } from './scenarios/large';
import type { ModePart } from './scenarios/per-mode';
import { propagationScenario } from './scenarios/propagation';
import { scaleScenario } from './scenarios/scale';
import type { Scenario, ScenarioContext, ScenarioName } from './scenarios/scenario';
import { slowScenario } from './scenarios/slow';
import { smallScenario } from './scenarios/small';

const SCENARIOS: Record<ScenarioName, Scenario> = {
  small: smallScenario,
  cpu: cpuScenario,
  large: largeScenario,
  churn: churnScenario,
  propagation: propagationScenario,
  failover: failoverScenario,
  slow: slowScenario,
  scale: scaleScenario,
};

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function factories(peers: PeerName[], mode: Mode): PeerFactory[] {
  const all: Record<PeerName, PeerFactory> = {
    direct: directPeer,
    'bare-http-proxy': scriptPeer('bare-http-proxy', 'bare-http-proxy-script.js'),
    'fastify-http-proxy': scriptPeer('fastify-http-proxy', 'fastify-http-proxy-script.js'),
    'undici-forwarder': scriptPeer('undici-forwarder', 'undici-forwarder-script.js'),
    switchboard: switchboardPeer(mode),
    'switchboard-access-log': accessLogPeer,
    nginx: nginxPeer,
    haproxy: haproxyPeer,
  };
  return peers.map((name) => all[name]);
}

/** One Switchboard mode's share of the run: which peers start and which scenarios run. */
interface Pass {
  mode: Mode;
  first: boolean;
  peers: PeerFactory[];
  scenarios: ScenarioName[];
  /** The name a peer goes by in logs and the report: Switchboard's carries the mode when several run. */
  label(peer: string): string;
}

function plan(options: BenchOptions): Pass[] {
  const label = (mode: Mode) => (peer: string) => (options.modes.length > 1 && peer === 'switchboard' ? `switchboard (${mode})` : peer);
  const [first, ...others] = options.modes;
  const passes: Pass[] = [{ mode: first, first: true, peers: factories(options.peers, first), scenarios: options.scenarios, label: label(first) }];
  const perMode = options.scenarios.filter((name) => SCENARIOS[name].perMode !== undefined);
  if (!options.peers.includes('switchboard') || perMode.length === 0) return passes;
  for (const mode of others) passes.push({ mode, first: false, peers: [switchboardPeer(mode)], scenarios: perMode, label: label(mode) });
  return passes;
}

interface Setup {
  settings: BenchOptions['settings'];
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
  return { settings: options.settings, load, missingTools: missing };
}

async function startPeers(pass: Pass, setup: Setup, peerContext: (tag: string) => PeerContext): Promise<{ running: RunningPeer[]; statuses: PeerStatus[] }> {
  const running: RunningPeer[] = [];
  const statuses: PeerStatus[] = [];
  for (const factory of pass.peers) {
    const name = pass.label(factory.name);
    const ctx = peerContext(factory.name);
    const missingTool = factory.needs.map((t) => setup.missingTools.get(t)).find((m) => m !== undefined);
    const reason = missingTool ?? (await factory.unavailable(ctx));
    if (reason !== undefined) {
      log(`skipping ${name}: ${reason}`);
      statuses.push({ name, status: 'skipped', reason });
      continue;
    }
    try {
      running.push(await factory.start(ctx));
      statuses.push({ name, status: 'ok' });
      log(`started ${name}`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log(`skipping ${name}: failed to start: ${message}`);
      statuses.push({ name, status: 'skipped', reason: `failed to start: ${oneLine(message)}` });
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

async function runScenarios(names: ScenarioName[], ctx: ScenarioContext): Promise<SectionResult[]> {
  const results: SectionResult[] = [];
  for (const name of names) {
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

interface PassResult {
  mode: Mode;
  statuses: PeerStatus[];
  sections: SectionResult[];
  /** Why a further mode's Switchboard did not run (its scenarios then say so). */
  skipped?: string;
}

/** Start the pass's peers, run its scenarios, stop the peers (so the next mode runs alone). */
async function runPass(pass: Pass, setup: Setup, backends: Backends, newPeerContext: (tag: string) => PeerContext): Promise<PassResult> {
  if (!pass.first) log(`mode ${pass.mode}: ${pass.scenarios.join(', ')}`);
  const { running, statuses } = await startPeers(pass, setup, newPeerContext);
  try {
    const switchboard = running.find((p): p is SwitchboardPeer => p.name === 'switchboard');
    if (!pass.first && !switchboard) return { mode: pass.mode, statuses, sections: [], skipped: statuses[0]?.reason ?? 'did not start' };
    const ctx: ScenarioContext = { settings: setup.settings, mode: pass.mode, load: setup.load, backends, peers: running, switchboard, newPeerContext, log };
    return { mode: pass.mode, statuses, sections: await runScenarios(pass.scenarios, ctx) };
  } finally {
    for (const peer of running) await peer.stop().catch(() => undefined);
  }
}

function modePart(pass: PassResult, name: string): ModePart {
  if (pass.skipped !== undefined) return { mode: pass.mode, skipped: pass.skipped };
  const section = pass.sections.find((s) => s.name === name);
  if (!section) return { mode: pass.mode, skipped: 'not run' };
  return section.error !== undefined ? { mode: pass.mode, error: section.error } : { mode: pass.mode, data: section.data };
}

/** The first pass's sections, with every further mode's rows joined into the per-mode ones. */
function joinPasses([first, ...later]: PassResult[]): SectionResult[] {
  return first.sections.map((section) => {
    const perMode = SCENARIOS[section.name as ScenarioName].perMode;
    if (!perMode || later.length === 0) return section;
    return { name: section.name, title: section.title, ...perMode.join([first, ...later].map((pass) => modePart(pass, section.name))) };
  });
}

async function bench(options: BenchOptions): Promise<BenchReport> {
  const started = new Date();
  const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'switchboard-bench-'));
  const removeTmpRoot = (): void => rmSync(tmpRoot, { recursive: true, force: true });
  // Also on an abrupt exit (Ctrl-C, a crash), when the finally below never runs.
  process.once('exit', removeTmpRoot);
  const peerContext = (backends: Backends, mode: Mode) => (tag: string): PeerContext => {
    const dir = mkdtempSync(path.join(tmpRoot, `${tag}-`));
    return { backends, dir, mode, log };
  };
  let backends: Backends | undefined;
  try {
    const passes = plan(options);
    const setup = await prepareTools(options, passes.flatMap((p) => p.peers));
    backends = await Backends.start();
    const results: PassResult[] = [];
    for (const pass of passes) results.push(await runPass(pass, setup, backends, peerContext(backends, pass.mode)));
    return {
      version: 1,
      date: started.toISOString().slice(0, 10),
      startedAt: started.toISOString(),
      durationS: (Date.now() - started.getTime()) / 1000,
      environment: environment(setup.load.name, options.modes.join(' + '), options.settings.quick),
      peers: results.flatMap((r) => r.statuses),
      scenarios: joinPasses(results),
    };
  } finally {
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
