/**
 * The one runner of long-lived Switchboard processes in the tests: `switchboard all`,
 * `registry` or `proxy`, the way an operator runs them (`node bin/switchboard.js <role> …`). Listeners bind 127.0.0.1:0 unless the caller says
 * otherwise; the real addresses come from the `listening` log lines. A watchdog kills the
 * process if ours dies without cleaning up (see child.ts).
 *
 *   const registry = await RoleProcess.start('registry', ['--store=etcd', `--etcd-endpoints=${url}`]);
 *   registry.url('api', '/v1/status/leader');
 *   await registry.kill();          // SIGKILL: a crash
 */
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, rmSync } from 'node:fs';
import { forgetAtExit, GiveUp, killAtExit, makeTempDir, startWatchdog, waitFor } from './child';
import { logLines, readListeners, spawnSwitchboard, type LogLine } from './switchboard-bin';

export { REPO_ROOT } from './switchboard-bin';
const START_TIMEOUT_MS = 20_000;
/** Keep at most this much of a process's output in memory (a long-running cluster logs on). */
const MAX_OUTPUT_CHARS = 1_000_000;

export type RoleName = 'all' | 'registry' | 'proxy';
export type RoleListener = 'api' | 'proxy' | 'admin' | 'dns';

const LISTENERS: Record<RoleName, RoleListener[]> = { all: ['proxy', 'api', 'admin', 'dns'], registry: ['api', 'admin', 'dns'], proxy: ['proxy', 'admin'] };

export interface RoleOptions {
  /** Added to the child's environment (SWITCHBOARD_* of ours never leak in). */
  env?: Record<string, string>;
  /** Also append everything the process writes to this file. */
  logFile?: string;
  /** Directory the watchdog removes when the process is killed; default: a fresh temp dir. */
  dir?: string;
  /** Whether cleanup removes `dir` (default: only when it was made here). */
  ownsDir?: boolean;
  /** The CA its https listeners' certificates chain to, for the helpers that call it. */
  ca?: Buffer;
}

export interface RoleExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class RoleProcess {
  readonly addresses: Partial<Record<RoleListener, string>> = {};
  /** From the same lines: `http://…` or `https://…` (a listener with a certificate). */
  private readonly urls: Partial<Record<RoleListener, string>> = {};
  private text = '';
  private stderrText = '';
  private readonly exited: Promise<RoleExit>;
  private watchdog?: ChildProcess;

  private constructor(
    readonly role: RoleName,
    private readonly child: ChildProcess,
    readonly dir: string,
    private readonly ownsDir: boolean,
    logFile: string | undefined,
    readonly ca: Buffer | undefined,
  ) {
    const collect = (s: string): void => {
      this.text += s;
      if (this.text.length > MAX_OUTPUT_CHARS) this.text = this.text.slice(-MAX_OUTPUT_CHARS / 2);
      if (logFile) appendFileSync(logFile, s);
    };
    child.stdout?.setEncoding('utf8').on('data', collect);
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      collect(s);
      if (this.stderrText.length < MAX_OUTPUT_CHARS) this.stderrText += s;
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    if (child.pid !== undefined) this.watchdog = startWatchdog(child.pid, ownsDir ? dir : undefined);
    // Last resort if a test forgets cleanup or crashes: also remove the dir.
    killAtExit(this);
    void this.exited.then(() => forgetAtExit(this));
  }

  /** Spawns the role and waits until every listener of it is up. */
  static async start(role: RoleName, args: string[], options: RoleOptions = {}): Promise<RoleProcess> {
    const listenerArgs = LISTENERS[role]
      .map((l) => `--${l}-listen`)
      .filter((flag) => !args.some((a) => a === flag || a.startsWith(`${flag}=`)))
      .map((flag) => `${flag}=127.0.0.1:0`);
    const dir = options.dir ?? makeTempDir(role);
    const child = spawnSwitchboard([role, ...listenerArgs, ...args], options.env);
    const proc = new RoleProcess(role, child, dir, options.ownsDir ?? options.dir === undefined, options.logFile, options.ca);
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
    const address = this.address(listener);
    return `${this.urls[listener] ?? `http://${address}`}${pathAndQuery}`;
  }

  /** The data dir of `all` (the temp dir unless the caller gave one). */
  get dataDir(): string {
    return this.dir;
  }

  /** `{host, port}` of the registry API, as the consul client takes it. */
  apiEndpoint(): { host: string; port: number } {
    const address = this.address('api');
    const i = address.lastIndexOf(':');
    return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
  }

  /** What the process wrote to stderr (the CLI's one-line errors). */
  stderr(): string {
    return this.stderrText;
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Resolves with the exit; rejects when the process is still running after `timeoutMs`. */
  waitForExit(timeoutMs = 15_000): Promise<RoleExit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`switchboard ${this.role} did not exit within ${timeoutMs} ms\n${this.output()}`)), timeoutMs);
    });
    return Promise.race([this.exited, timeout]).finally(() => clearTimeout(timer));
  }

  /** Every JSON log line still in memory. */
  logs(): LogLine[] {
    return logLines(this.text);
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
        readListeners(this.logs(), this.addresses, this.urls);
        if (!this.running()) throw new GiveUp(`switchboard ${this.role} exited during start`);
        return wanted.every((l) => this.addresses[l] !== undefined);
      },
      START_TIMEOUT_MS,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.output()}`);
    });
  }
}
