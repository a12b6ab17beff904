/**
 * The real CLI (`node bin/switchboard.js …`) as a user runs it: `switchboard all` (long-lived,
 * through the one runner in role-process.ts), short-lived invocations (`runSwitchboard`), and
 * the small HTTP helpers the e2e tests share. Listeners bind 127.0.0.1:0; the real addresses
 * come from the `listening` log lines.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { makeTempDir, waitFor } from './child';
import { RoleProcess, type RoleExit, type RoleListener } from './role-process';
import { spawnSwitchboard } from './switchboard-bin';

export { waitFor };
export { REPO_ROOT, type LogLine } from './switchboard-bin';

export type ListenerName = RoleListener;
export type Exit = RoleExit;

export interface StartOptions {
  /** Reuse a data dir (restart, lock tests); default: a fresh temp dir removed on cleanup. */
  dataDir?: string;
  /** Extra flags after the port-0 listeners and the data dir. */
  args?: string[];
  env?: Record<string, string>;
}

/** `switchboard all`, run by the one process runner (role-process.ts). */
export type SwitchboardProcess = RoleProcess;

export const SwitchboardProcess = {
  /** Spawns `switchboard all` and waits until all four listeners are up. */
  start(options: StartOptions = {}): Promise<RoleProcess> {
    const dataDir = options.dataDir ?? makeTempDir('e2e');
    return RoleProcess.start('all', [`--data-dir=${dataDir}`, ...(options.args ?? [])], { env: options.env, dir: dataDir, ownsDir: options.dataDir === undefined });
  },
};

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
