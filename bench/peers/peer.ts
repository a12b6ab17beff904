/**
 * A peer is one way of getting a request from the load generator to the backends: straight
 * (`direct`, the ceiling) or through a proxy. Every peer routes `Host: app.svc` to the `app`
 * backend instance, so all of them do the same work per request.
 */
import type { Backends } from '../backends';

export const PEER_NAMES = ['direct', 'bare-http-proxy', 'fastify-http-proxy', 'undici-forwarder', 'switchboard', 'switchboard-access-log', 'nginx', 'haproxy'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

/** How Switchboard runs: one process (`all`), or registry + proxy over etcd and Redis (later). */
export type Mode = 'all-in-one' | 'distributed';

/** The Host header every peer routes to the `app` backend. */
export const APP_HOST = 'app.svc';
export const APP_SERVICE = 'app';

export interface PeerContext {
  backends: Backends;
  /** A temp dir for this peer's config and state; the harness removes it. */
  dir: string;
  mode: Mode;
  log(line: string): void;
  /**
   * How the Node-based peers run node: the command and its arguments before the script
   * (bench/instructions.ts: valgrind … node --single-threaded). Unset: node itself.
   */
  nodeLauncher?: readonly string[];
}

/** The command and arguments that run a node script for a peer, under `ctx.nodeLauncher` when set. */
export function nodeCommand(ctx: PeerContext, args: string[]): { command: string; args: string[] } {
  const [command, ...before] = ctx.nodeLauncher ?? [process.execPath];
  return { command, args: [...before, ...args] };
}

export interface RunningPeer {
  readonly name: PeerName;
  /** http://127.0.0.1:<port>, where load goes. */
  readonly baseUrl: string;
  readonly host: string;
  /** Root of the proxy's process tree; undefined for `direct` (no proxy process). */
  readonly pid?: number;
  stop(): Promise<void>;
}

export interface PeerFactory {
  readonly name: PeerName;
  /** Tools this peer needs on PATH (installed by the harness when it may). */
  readonly needs: string[];
  /** Why the peer cannot run here, or undefined when it can. */
  unavailable(ctx: PeerContext): Promise<string | undefined>;
  start(ctx: PeerContext): Promise<RunningPeer>;
}

/** Starting a peer on a port the OS just freed can lose a race; try a few times. */
export async function withPortRetries<T>(attempts: number, start: () => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await start();
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}
