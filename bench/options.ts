/** Command-line options of `npm run bench` / `node dist/bench/run.js`. */
import path from 'node:path';
import { type Mode, PEER_NAMES, type PeerName } from './peers/peer';
import { SCENARIO_NAMES, type ScenarioName } from './scenarios/scenario';
import { type BenchSettings, fullSettings, quickSettings, withDuration, withHugeCatalog, withRounds } from './settings';

export const MODES: readonly Mode[] = ['all-in-one', 'distributed'];
const PER_MODE_HINT = 'churn, propagation, failover';

export const USAGE = `usage: node dist/bench/run.js [options]
  --quick                 a few hundred requests per peer (seconds, not representative)
  --scenarios a,b         of ${SCENARIO_NAMES.join(',')} (default: all)
  --peers a,b             of ${PEER_NAMES.join(',')} (default: all)
  --duration S            seconds per duration-bound load run (default 4)
  --rounds N              interleaved rounds of the small, cpu and large scenarios (default 3)
  --huge                  the scale scenario with 1,000,000 instances / 100,000 services
  --out DIR               where <date>.md/.json/.svg go (default bench/results)
  --loadgen NAME          wrk | autocannon | auto (default auto: wrk when installed)
  --modes a,b             Switchboard modes of ${MODES.join(',')} (default: both). The first
                          runs every scenario; each further one starts its own Switchboard and
                          reruns the per-mode scenarios (${PER_MODE_HINT}) beside it
  --mode MODE             the same as --modes MODE
  --no-install            never apt-get install missing tools (peers, wrk, etcd, redis-server); skip them
`;

export interface BenchOptions {
  settings: BenchSettings;
  scenarios: ScenarioName[];
  peers: PeerName[];
  outDir: string;
  loadgen: 'wrk' | 'autocannon' | 'auto';
  /** Switchboard modes, in run order; the first one runs every scenario. */
  modes: Mode[];
  install: boolean;
}

export class UsageError extends Error {}

function list<T extends string>(flag: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new UsageError(`${flag}: unknown "${item}" (expected ${allowed.join(', ')})`);
  }
  if (items.length === 0) throw new UsageError(`${flag}: empty list`);
  return items as T[];
}

function uniqueList<T extends string>(flag: string, value: string, allowed: readonly T[]): T[] {
  return [...new Set(list(flag, value, allowed))];
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new UsageError(`${flag}: expected one of ${allowed.join(', ')}`);
  return value as T;
}

function positiveNumber(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag}: expected a positive number of seconds`);
  return n;
}

function positiveInteger(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0 || n > 50) throw new UsageError(`${flag}: expected a whole number from 1 to 50`);
  return n;
}

/** Repo root, from dist/bench/options.js. */
const REPO_ROOT = path.resolve(__dirname, '..', '..');

export function parseOptions(argv: string[]): BenchOptions {
  let quick = false;
  let duration: number | undefined;
  let rounds: number | undefined;
  let huge = false;
  const options: Omit<BenchOptions, 'settings'> = {
    scenarios: [...SCENARIO_NAMES],
    peers: [...PEER_NAMES],
    outDir: path.join(REPO_ROOT, 'bench', 'results'),
    loadgen: 'auto',
    modes: [...MODES],
    install: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--help' || flag === '-h') throw new UsageError('');
    else if (flag === '--quick') quick = true;
    else if (flag === '--huge') huge = true;
    else if (flag === '--no-install') options.install = false;
    else if (flag === '--scenarios') options.scenarios = list(flag, value(), SCENARIO_NAMES);
    else if (flag === '--peers') options.peers = list(flag, value(), PEER_NAMES);
    else if (flag === '--duration') duration = positiveNumber(flag, value());
    else if (flag === '--rounds') rounds = positiveInteger(flag, value());
    else if (flag === '--out') options.outDir = path.resolve(value());
    else if (flag === '--loadgen') options.loadgen = oneOf(flag, value(), ['wrk', 'autocannon', 'auto'] as const);
    else if (flag === '--modes') options.modes = uniqueList(flag, value(), MODES);
    else if (flag === '--mode') options.modes = [oneOf(flag, value(), MODES)];
    else throw new UsageError(`unknown option ${flag}`);
  }
  const base = quick ? quickSettings() : fullSettings();
  const timed = duration === undefined ? base : withDuration(base, duration);
  const rounded = rounds === undefined ? timed : withRounds(timed, rounds);
  return { ...options, settings: huge ? withHugeCatalog(rounded) : rounded };
}
