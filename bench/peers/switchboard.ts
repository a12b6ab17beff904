/**
 * Switchboard as a peer, started like a user would: `switchboard all` with every listener on a
 * free loopback port and a fresh data dir (or, in distributed mode, registries and proxies
 * over etcd and Redis: switchboard-distributed.ts). The `app` instance is registered through
 * the Consul-compatible API, so the proxy routes from its real catalog.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { ManagedProcess } from '../child';
import { monotonicMs } from '../clock';
import { RegistryClient } from '../registry-client';
import { APP_HOST, APP_SERVICE, nodeCommand, type Mode, type PeerContext, type PeerFactory, type PeerName, type RunningPeer } from './peer';
import { waitUntilRouted } from './routed';
import { distributedNeeds, startDistributedSwitchboard } from './switchboard-distributed';

export { waitUntilRouted };

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI_JS = path.join(REPO_ROOT, 'dist', 'src', 'cli.js');
const BIN = path.join(REPO_ROOT, 'bin', 'switchboard.js');

export interface SwitchboardPeer extends RunningPeer {
  readonly pid: number;
  readonly apiUrl: string;
  readonly adminUrl: string;
  readonly registry: RegistryClient;
  /** Every registry API (one in all-in-one); scenarios spread their writes over them. */
  readonly registries: readonly RegistryClient[];
  /** Every proxy routing from this catalog, baseUrl first (one in all-in-one). */
  readonly proxyUrls: readonly string[];
  /** Milliseconds from spawn until all three listeners were up. */
  readonly startupMs: number;
}

type Listener = 'proxy' | 'api' | 'admin';

interface ListeningLine {
  listener: Listener;
  address: string;
}

function parseListening(line: string): ListeningLine | undefined {
  try {
    const entry = JSON.parse(line) as { msg?: unknown; listener?: unknown; address?: unknown };
    if (entry.msg !== 'listening' || typeof entry.address !== 'string') return undefined;
    if (entry.listener !== 'proxy' && entry.listener !== 'api' && entry.listener !== 'admin') return undefined;
    return { listener: entry.listener, address: entry.address };
  } catch {
    return undefined;
  }
}

/** Collects the three `listening` lines; the CLI may log them in any order. */
function waitForListeners(proc: ManagedProcess): Promise<Record<Listener, string>> {
  const seen: Partial<Record<Listener, string>> = {};
  return proc.waitForLine('proxy, api and admin listening', (line) => {
    const parsed = parseListening(line);
    if (parsed) seen[parsed.listener] = parsed.address;
    return seen.proxy && seen.api && seen.admin ? (seen as Record<Listener, string>) : undefined;
  }, 120_000);
}

function allInOneArgs(dataDir: string): string[] {
  return [BIN, 'all', '--proxy-listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--dns-listen', '127.0.0.1:0', '--data-dir', dataDir];
}

export interface StartOptions {
  dataDir: string;
  /** Register `app` → the app backend and wait until it routes (default true). */
  registerApp?: boolean;
  /** Passed to the child's environment (e.g. a log level). */
  env?: Record<string, string>;
  /** The peer's name in reports (default `switchboard`). */
  name?: PeerName;
  /** More CLI flags for `switchboard all` (e.g. `--config <file>`). */
  args?: string[];
  /** Flags for node itself, before the script (e.g. `--cpu-prof`, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
}

/** Start `switchboard all`; used by the peer and by scenarios that need their own instance. */
export async function startSwitchboard(ctx: PeerContext, options: StartOptions): Promise<SwitchboardPeer> {
  mkdirSync(options.dataDir, { recursive: true });
  const spawnedAt = monotonicMs();
  const run = nodeCommand(ctx, [...(options.nodeArgs ?? []), ...allInOneArgs(options.dataDir), ...(options.args ?? [])]);
  const proc = new ManagedProcess(run.command, run.args, { env: { ...process.env, ...options.env } });
  let registry: RegistryClient | undefined;
  try {
    const listeners = await waitForListeners(proc);
    const startupMs = monotonicMs() - spawnedAt;
    registry = new RegistryClient(`http://${listeners.api}`);
    const peer: SwitchboardPeer = {
      name: options.name ?? 'switchboard',
      baseUrl: `http://${listeners.proxy}`,
      host: APP_HOST,
      pid: proc.pid,
      apiUrl: `http://${listeners.api}`,
      adminUrl: `http://${listeners.admin}`,
      registry,
      registries: [registry],
      proxyUrls: [`http://${listeners.proxy}`],
      startupMs,
      stop: async () => {
        registry?.close();
        await proc.stop(10_000);
      },
    };
    if (options.registerApp ?? true) {
      await registry.register({ id: 'app-1', service: APP_SERVICE, port: ctx.backends.appPort });
      await waitUntilRouted(peer.baseUrl, APP_HOST);
    }
    return peer;
  } catch (err) {
    registry?.close();
    await proc.stop(2000);
    throw err;
  }
}

/** A `switchboard proxy` of its own, following `registryUrl` (the scale scenario weighs it). */
export interface ProxyRole {
  pid: number;
  adminUrl: string;
  stop(): Promise<void>;
}

/** Starts `switchboard proxy` (one process) on free loopback ports; resolves once it listens. */
export async function startProxyRole(registryUrl: string, redisUrl: string): Promise<ProxyRole> {
  const args = [BIN, 'proxy', '--proxy-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--registry', registryUrl, '--redis', redisUrl, '--workers=1'];
  const proc = new ManagedProcess(process.execPath, args, { env: { ...process.env } });
  try {
    const admin = await proc.waitForLine('the proxy role\'s admin listening', (line) => {
      const parsed = parseListening(line);
      return parsed?.listener === 'admin' ? parsed.address : undefined;
    }, 60_000);
    return { pid: proc.pid, adminUrl: `http://${admin}`, stop: () => proc.stop(10_000) };
  } catch (err) {
    await proc.stop(2000);
    throw err;
  }
}

/** `switchboard all`, or in distributed mode registries and proxies over etcd and Redis. */
export function switchboardPeer(mode: Mode): PeerFactory {
  return {
    name: 'switchboard',
    needs: mode === 'distributed' ? distributedNeeds() : [],
    async unavailable() {
      if (!existsSync(CLI_JS)) return `${path.relative(REPO_ROOT, CLI_JS)} does not exist (build the CLI first)`;
      return undefined;
    },
    start: (ctx) => (mode === 'distributed' ? startDistributedSwitchboard(ctx) : startSwitchboard(ctx, { dataDir: path.join(ctx.dir, 'switchboard-data') })),
  };
}

/**
 * `switchboard all` with its access log on (JSON lines to a file in the peer's dir): beside
 * the plain one, what logging every request costs.
 */
export const accessLogPeer: PeerFactory = {
  name: 'switchboard-access-log',
  needs: [],
  async unavailable() {
    return existsSync(CLI_JS) ? undefined : `${path.relative(REPO_ROOT, CLI_JS)} does not exist (build the CLI first)`;
  },
  start: (ctx) =>
    startSwitchboard(ctx, {
      name: 'switchboard-access-log',
      dataDir: path.join(ctx.dir, 'switchboard-data'),
      args: ['--access-log=true', `--access-log-path=${path.join(ctx.dir, 'access.log')}`],
    }),
};
