/**
 * Switchboard as a peer, started like a user would: `switchboard all` with every listener on a
 * free loopback port and a fresh data dir. The `app` instance is registered through the
 * Consul-compatible API, so the proxy routes from its real catalog.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { ManagedProcess, waitFor } from '../child';
import { monotonicMs } from '../clock';
import { httpRequest, keepAliveAgent } from '../http';
import { RegistryClient } from '../registry-client';
import { APP_HOST, APP_SERVICE, type Mode, type PeerContext, type PeerFactory, type RunningPeer } from './peer';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI_JS = path.join(REPO_ROOT, 'dist', 'src', 'cli.js');
const BIN = path.join(REPO_ROOT, 'bin', 'switchboard.js');

export interface SwitchboardPeer extends RunningPeer {
  readonly pid: number;
  readonly apiUrl: string;
  readonly adminUrl: string;
  readonly registry: RegistryClient;
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
  return [BIN, 'all', '--proxy-listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--data-dir', dataDir];
}

/** GET through the proxy until `host` routes to a 200. */
export async function waitUntilRouted(proxyUrl: string, host: string, timeoutMs = 15_000): Promise<void> {
  const agent = keepAliveAgent(1);
  try {
    await waitFor(`${host} to route through ${proxyUrl}`, async () => {
      const res = await httpRequest(`${proxyUrl}/small`, { headers: { host }, agent });
      return res.status === 200;
    }, timeoutMs);
  } finally {
    agent.destroy();
  }
}

export interface StartOptions {
  dataDir: string;
  /** Register `app` → the app backend and wait until it routes (default true). */
  registerApp?: boolean;
  /** Passed to the child's environment (e.g. a log level). */
  env?: Record<string, string>;
  /** Flags for node itself, before the script (e.g. `--cpu-prof`, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
}

/** Start `switchboard all`; used by the peer and by scenarios that need their own instance. */
export async function startSwitchboard(ctx: PeerContext, options: StartOptions): Promise<SwitchboardPeer> {
  if (ctx.mode !== 'all-in-one') throw new Error(`switchboard mode ${ctx.mode} is not supported by the harness yet`);
  mkdirSync(options.dataDir, { recursive: true });
  const spawnedAt = monotonicMs();
  const proc = new ManagedProcess(process.execPath, [...(options.nodeArgs ?? []), ...allInOneArgs(options.dataDir)], {
    env: { ...process.env, ...options.env },
  });
  let registry: RegistryClient | undefined;
  try {
    const listeners = await waitForListeners(proc);
    const startupMs = monotonicMs() - spawnedAt;
    registry = new RegistryClient(`http://${listeners.api}`);
    const peer: SwitchboardPeer = {
      name: 'switchboard',
      baseUrl: `http://${listeners.proxy}`,
      host: APP_HOST,
      pid: proc.pid,
      apiUrl: `http://${listeners.api}`,
      adminUrl: `http://${listeners.admin}`,
      registry,
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

export function switchboardPeer(mode: Mode): PeerFactory {
  return {
    name: 'switchboard',
    needs: [],
    async unavailable() {
      if (mode !== 'all-in-one') return `distributed mode (etcd + Redis) is not wired into the harness yet`;
      if (!existsSync(CLI_JS)) return `${path.relative(REPO_ROOT, CLI_JS)} does not exist (build the CLI first)`;
      return undefined;
    },
    start: (ctx) => startSwitchboard(ctx, { dataDir: path.join(ctx.dir, 'switchboard-data') }),
  };
}
