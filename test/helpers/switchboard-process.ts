/**
 * Runs the real CLI (`node bin/switchboard.js …`) as a child process, the way a user does.
 * Listeners bind 127.0.0.1:0; the real addresses come from the `listening` log lines.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import http from 'node:http';
import { makeTempDir, waitFor } from './child';
import { logLines, readListeners, spawnSwitchboard, type LogLine } from './switchboard-bin';

export { waitFor };
export { REPO_ROOT, type LogLine } from './switchboard-bin';

export type ListenerName = 'proxy' | 'api' | 'admin' | 'dns';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  /** Reuse a data dir (restart, lock tests); default: a fresh temp dir removed on cleanup. */
  dataDir?: string;
  /** Extra flags after the port-0 listeners and the data dir. */
  args?: string[];
  env?: Record<string, string>;
}

export class SwitchboardProcess {
  readonly addresses: Partial<Record<ListenerName, string>> = {};
  private stdoutText = '';
  private stderrText = '';
  private readonly exit: Promise<Exit>;

  private constructor(
    private readonly child: ChildProcess,
    readonly dataDir: string,
    private readonly ownsDataDir: boolean,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (this.stdoutText += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderrText += s));
    this.exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Spawns `switchboard all` and waits until all four listeners are up. */
  static async start(options: StartOptions = {}): Promise<SwitchboardProcess> {
    const dataDir = options.dataDir ?? makeTempDir('e2e');
    const args = [
      'all',
      '--proxy-listen=127.0.0.1:0',
      '--api-listen=127.0.0.1:0',
      '--admin-listen=127.0.0.1:0',
      '--dns-listen=127.0.0.1:0',
      `--data-dir=${dataDir}`,
      ...(options.args ?? []),
    ];
    const child = spawnSwitchboard(args, options.env);
    const sb = new SwitchboardProcess(child, dataDir, options.dataDir === undefined);
    try {
      await sb.waitForListeners();
    } catch (err) {
      await sb.cleanup();
      throw err;
    }
    return sb;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Every JSON log line so far. */
  logs(): LogLine[] {
    return logLines(this.stdoutText);
  }

  stderr(): string {
    return this.stderrText;
  }

  output(): string {
    return `stdout:\n${this.stdoutText}\nstderr:\n${this.stderrText}`;
  }

  url(listener: ListenerName, pathAndQuery = '/'): string {
    return `http://${this.address(listener)}${pathAndQuery}`;
  }

  address(listener: ListenerName): string {
    const address = this.addresses[listener];
    if (!address) throw new Error(`no ${listener} listener address`);
    return address;
  }

  /** `{host, port}` of the registry API, as the consul client takes it. */
  apiEndpoint(): { host: string; port: number } {
    const [host, port] = splitHostPort(this.address('api'));
    return { host, port };
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  waitForExit(timeoutMs = 15_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`switchboard did not exit within ${timeoutMs} ms\n${this.output()}`)), timeoutMs);
    });
    return Promise.race([this.exit, timeout]).finally(() => clearTimeout(timer));
  }

  /** SIGKILL if still running; remove the data dir when we made it. Safe to call twice. */
  async cleanup(): Promise<void> {
    if (this.running()) this.child.kill('SIGKILL');
    await this.exit;
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  private async waitForListeners(): Promise<void> {
    await waitFor(
      'switchboard to log its four listening lines',
      () => {
        readListeners(this.logs(), this.addresses);
        if (!this.running()) throw new Error(`switchboard exited during start\n${this.output()}`);
        return this.addresses.proxy !== undefined && this.addresses.api !== undefined && this.addresses.admin !== undefined && this.addresses.dns !== undefined;
      },
      15_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.output()}`);
    });
  }
}

function splitHostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), Number(address.slice(i + 1))];
}

/** A refused invocation says why in exactly one line on stderr, naming each of `parts`. */
export function assertOneLine(stderr: string, ...parts: string[]): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${stderr}`);
  for (const part of parts) assert.ok(lines[0].includes(part), `"${lines[0]}" should mention ${part}`);
}

/** A short-lived invocation (--help, invalid input, busy port): runs to its exit. */
export async function runSwitchboard(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Exit & { stdout: string; stderr: string }> {
  const child = spawnSwitchboard(args, options.env);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timeoutMs = options.timeoutMs ?? 15_000;
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exit = await new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  clearTimeout(timer);
  if (exit.signal === 'SIGKILL') throw new Error(`switchboard ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`);
  return { ...exit, stdout, stderr };
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request without keep-alive (so a shutting-down server is not held open by our pool). */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** JSON body or undefined when the body is not JSON. */
export function jsonOf(result: HttpResult): unknown {
  try {
    return JSON.parse(result.body);
  } catch {
    return undefined;
  }
}
