/**
 * What every test that runs the real CLI (`node bin/switchboard.js …`) needs: the binary, a
 * clean environment, and the listeners' real addresses read from its JSON log lines.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { forgetAtExit, killAtExit } from './child';

export const REPO_ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(REPO_ROOT, 'bin', 'switchboard.js');

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** `node bin/switchboard.js …args` with stdout/stderr piped; SIGKILLed if still running when we exit. */
export function spawnSwitchboard(args: string[], env?: Record<string, string>): ChildProcessByStdio<null, Readable, Readable> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const entry = { killNow: () => child.kill('SIGKILL') };
  killAtExit(entry);
  child.once('exit', () => forgetAtExit(entry));
  return child;
}

/** The environment a child gets: ours without SWITCHBOARD_* (so the caller's shell can't leak in). */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SWITCHBOARD_')) env[k] = v;
  return { ...env, ...extra };
}

/** Every complete JSON log line in `text`. */
export function logLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as LogLine];
      } catch {
        return []; // a line still being written
      }
    });
}

/** Copies the address of each `listening` line into `addresses` (by listener name), and its URL (http or https) into `urls`. */
export function readListeners<L extends string>(lines: LogLine[], addresses: Partial<Record<L, string>>, urls?: Partial<Record<L, string>>): void {
  for (const line of lines) {
    if (line.msg === 'listening' && typeof line.listener === 'string' && typeof line.address === 'string') {
      addresses[line.listener as L] = line.address;
      if (urls !== undefined && typeof line.url === 'string') urls[line.listener as L] = line.url;
    }
  }
}
