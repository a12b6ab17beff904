/**
 * Runs one `switchboard registry` or `switchboard proxy` process, the way an operator does
 * (`node bin/switchboard.js <role> …`). Listeners bind 127.0.0.1:0 unless the caller says
 * otherwise; the real addresses come from the `listening` log lines. A watchdog kills the
 * process if ours dies without cleaning up (see child.ts).
 *
 *   const registry = await RoleProcess.start('registry', ['--store=etcd', `--etcd-endpoints=${url}`]);
 *   registry.url('api', '/v1/status/leader');
 *   await registry.kill();          // SIGKILL: a crash
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { GiveUp, makeTempDir, startWatchdog, waitFor } from './child';

export const REPO_ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(REPO_ROOT, 'bin', 'switchboard.js');
const START_TIMEOUT_MS = 20_000;
/** Keep at most this much of a process's output in memory (a long-running cluster logs on). */
const MAX_OUTPUT_CHARS = 1_000_000;

export type RoleName = 'registry' | 'proxy';
export type RoleListener = 'api' | 'proxy' | 'admin';

const LISTENERS: Record<RoleName, RoleListener[]> = { registry: ['api', 'admin'], proxy: ['proxy', 'admin'] };

export interface RoleOptions {
  /** Added to the child's environment (SWITCHBOARD_* of ours never leak in). */
  env?: Record<string, string>;
  /** Also append everything the process writes to this file. */
  logFile?: string;
  /** Directory the watchdog removes when the process is killed; default: a fresh temp dir. */
  dir?: string;
}

export interface RoleExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<RoleProcess>();
let exitHookInstalled = false;

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SWITCHBOARD_')) env[k] = v;
  return { ...env, ...extra };
}

export class RoleProcess {
  readonly addresses: Partial<Record<RoleListener, string>> = {};
  private text = '';
  private readonly exited: Promise<RoleExit>;
  private watchdog?: ChildProcess;

  private constructor(
    readonly role: RoleName,
    private readonly child: ChildProcess,
    readonly dir: string,
    private readonly ownsDir: boolean,
    logFile: string | undefined,
  ) {
    const collect = (s: string): void => {
      this.text += s;
      if (this.text.length > MAX_OUTPUT_CHARS) this.text = this.text.slice(-MAX_OUTPUT_CHARS / 2);
      if (logFile) appendFileSync(logFile, s);
    };
    child.stdout?.setEncoding('utf8').on('data', collect);
    child.stderr?.setEncoding('utf8').on('data', collect);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    if (child.pid !== undefined) this.watchdog = startWatchdog(child.pid, dir);
    installExitHook();
    live.add(this);
    void this.exited.then(() => live.delete(this));
  }

  /** Spawns the role and waits until every listener of it is up. */
  static async start(role: RoleName, args: string[], options: RoleOptions = {}): Promise<RoleProcess> {
    const listenerArgs = LISTENERS[role]
      .map((l) => `--${l}-listen`)
      .filter((flag) => !args.some((a) => a === flag || a.startsWith(`${flag}=`)))
      .map((flag) => `${flag}=127.0.0.1:0`);
    const dir = options.dir ?? makeTempDir(role);
    const child = spawn(process.execPath, [BIN, role, ...listenerArgs, ...args], {
      cwd: REPO_ROOT,
      env: childEnv(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = new RoleProcess(role, child, dir, options.dir === undefined, options.logFile);
    try {
      await proc.waitForListeners();
    } catch (err) {
      await proc.cleanup();
      throw err;
    }
    return proc;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  address(listener: RoleListener): string {
    const address = this.addresses[listener];
    if (!address) throw new Error(`${this.role} has no ${listener} listener`);
    return address;
  }

  url(listener: RoleListener, pathAndQuery = '/'): string {
    return `http://${this.address(listener)}${pathAndQuery}`;
  }

  /** Every JSON log line still in memory. */
  logs(): Array<{ msg: string; [field: string]: unknown }> {
    return this.text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as { msg: string }];
        } catch {
          return []; // a line still being written
        }
      });
  }

  output(): string {
    return `--- ${this.role} (pid ${this.child.pid}) output ---\n${this.text}`;
  }

  /** Send `signal` (default SIGKILL: a crash) and wait until the process is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<RoleExit> {
    this.disarmWatchdog();
    if (this.running()) this.child.kill(signal);
    return this.exited;
  }

  /** SIGTERM (a clean shutdown), escalating to SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<RoleExit> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.kill('SIGTERM');
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL if still running, and remove the temp dir when we made it. Safe to call twice. */
  async cleanup(): Promise<void> {
    await this.kill('SIGKILL');
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous, for the process 'exit' hook. */
  killNow(): void {
    this.disarmWatchdog();
    if (this.running()) this.child.kill('SIGKILL');
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  private disarmWatchdog(): void {
    this.watchdog?.kill('SIGKILL');
    this.watchdog = undefined;
  }

  private async waitForListeners(): Promise<void> {
    const wanted = LISTENERS[this.role];
    await waitFor(
      `switchboard ${this.role} to log its listening lines`,
      () => {
        for (const line of this.logs()) {
          if (line.msg === 'listening' && typeof line.listener === 'string' && typeof line.address === 'string') {
            this.addresses[line.listener as RoleListener] = line.address;
          }
        }
        if (!this.running()) throw new GiveUp(`switchboard ${this.role} exited during start`);
        return wanted.every((l) => this.addresses[l] !== undefined);
      },
      START_TIMEOUT_MS,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.output()}`);
    });
  }
}

/** Last resort if a test forgets cleanup or crashes: no role process outlives ours. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of live) p.killNow();
  });
}
