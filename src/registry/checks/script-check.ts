import { spawn } from 'node:child_process';
import type { Check as CheckRecord } from '../../catalog/model';
import { type Check, type CheckResult, MAX_CHECK_OUTPUT, deadline, errorText, timeoutOf } from './check';

/**
 * Consul's script check (`Args`): runs a program and reads its exit status — 0 passing,
 * 1 warning, anything else (or a signal, or the Timeout) critical — with the first 4 KiB of
 * what it wrote to stdout and stderr as the Output.
 *
 * Whoever registers one runs code on this host, so: no shell (the arguments are passed as
 * they are, `;` and `$(…)` mean nothing), an environment of PATH alone, its own process group
 * so that at the Timeout the program and everything it started are killed, and at most
 * `maxConcurrent` scripts at once (the rest queue). Whether one may be registered at all is
 * the API's decision (registry.enableScriptChecks, loopback or agent:write).
 */
export interface ScriptCheckOptions {
  maxConcurrent: number;
}

/** What a script sees of the environment: enough to find programs, nothing of ours. */
const SCRIPT_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

export class ScriptCheck implements Check {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly options: ScriptCheckOptions) {}

  async run(check: CheckRecord, signal: AbortSignal): Promise<CheckResult> {
    const args = check.args ?? [];
    if (args.length === 0) return { status: 'critical', output: 'script check without Args' };
    await this.slot(signal);
    try {
      if (signal.aborted) return { status: 'critical', output: 'cancelled' };
      return await runScript(args, timeoutOf(check), signal);
    } finally {
      this.release();
    }
  }

  private slot(signal: AbortSignal): Promise<void> {
    if (this.running < this.options.maxConcurrent) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const go = (): void => {
        signal.removeEventListener('abort', leave);
        this.running++;
        resolve();
      };
      // Aborted while waiting: leave the queue; run() sees the abort and returns at once.
      const leave = (): void => {
        const at = this.waiting.indexOf(go);
        if (at >= 0) this.waiting.splice(at, 1);
        this.running++;
        resolve();
      };
      signal.addEventListener('abort', leave, { once: true });
      this.waiting.push(go);
    });
  }

  private release(): void {
    this.running--;
    this.waiting.shift()?.();
  }
}

function runScript(args: string[], timeoutMs: number, parent: AbortSignal): Promise<CheckResult> {
  const limit = deadline(parent, timeoutMs);
  return new Promise<CheckResult>((resolve) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    const keep = (chunk: Buffer): void => {
      if (kept >= MAX_CHECK_OUTPUT) return;
      const part = chunk.subarray(0, MAX_CHECK_OUTPUT - kept);
      chunks.push(part);
      kept += part.length;
    };
    const output = (): string => Buffer.concat(chunks).toString('utf8');
    let settled = false;
    const finish = (result: CheckResult): void => {
      if (settled) return;
      settled = true;
      limit.dispose();
      resolve(result);
    };
    const child = spawn(args[0], args.slice(1), { shell: false, detached: true, env: SCRIPT_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    limit.signal.addEventListener('abort', killGroup, { once: true });
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => finish({ status: 'critical', output: `cannot run ${args[0]}: ${errorText(err)}` }));
    child.on('close', (code, signal) => {
      if (limit.timedOut()) return finish({ status: 'critical', output: `timed out after ${timeoutMs} ms: killed\n${output()}`.slice(0, MAX_CHECK_OUTPUT) });
      if (parent.aborted) return finish({ status: 'critical', output: 'cancelled' });
      const status = code === 0 ? 'passing' : code === 1 ? 'warning' : 'critical';
      const why = signal !== null ? `killed by ${signal}` : `exit status ${code}`;
      finish({ status, output: output() === '' ? why : output() });
    });
  });
}
