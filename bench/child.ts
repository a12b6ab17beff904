/**
 * Child processes for the harness: peers, backends and load generators all run as separate
 * processes so that none of them shares an event loop (or a CPU account) with another.
 * Nothing may outlive the harness: every child gets a watchdog that kills it when our pipe to
 * the watchdog closes, however the harness dies.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import net from 'node:net';
import { forgetAtExit, killAtExit, OutputTail, startWatchdog, waitFor as pollUntil } from '../test/helpers/child';

export { freePort } from '../test/helpers/child';

export type LineListener = (line: string) => void;

/**
 * One long-running child (a proxy, nginx, the backends). Lines on stdout/stderr go to
 * listeners and to a tail kept for error messages.
 */
export class ManagedProcess {
  readonly tail = new OutputTail();
  private readonly child: ChildProcess;
  private readonly watchdog?: ChildProcess;
  private readonly exited: Promise<void>;
  private readonly listeners = new Set<LineListener>();

  constructor(
    readonly command: string,
    args: string[],
    options: SpawnOptions = {},
  ) {
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.once('error', (err) => this.tail.push(`spawn error: ${err.message}`));
    this.pipeLines(this.child.stdout);
    this.pipeLines(this.child.stderr);
    if (this.child.pid !== undefined) this.watchdog = startWatchdog(this.child.pid);
    killAtExit(this);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.command} did not start: ${this.tail.text()}`);
    return this.child.pid;
  }

  get process(): ChildProcess {
    return this.child;
  }

  running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined;
  }

  onLine(listener: LineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the first line `match` accepts; rejects on exit or after `timeoutMs`. */
  waitForLine<T>(what: string, match: (line: string) => T | undefined, timeoutMs = 15_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const finish = (err?: Error, value?: T): void => {
        clearTimeout(timer);
        off();
        this.child.off('exit', onExit);
        if (err) reject(err);
        else resolve(value as T);
      };
      const off = this.onLine((line) => {
        const value = match(line);
        if (value !== undefined) finish(undefined, value);
      });
      const onExit = (): void => finish(new Error(`${this.command} exited while waiting for ${what}:\n${this.tail.text()}`));
      const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what} from ${this.command}:\n${this.tail.text()}`)), timeoutMs);
      this.child.once('exit', onExit);
      if (!this.running()) onExit();
    });
  }

  /** SIGTERM, escalating to SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 5000): Promise<void> {
    this.watchdog?.kill('SIGKILL');
    forgetAtExit(this);
    if (!this.running()) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    this.child.kill('SIGTERM');
    await this.exited;
    clearTimeout(timer);
  }

  /** Synchronous, for the process 'exit' hook. */
  killNow(): void {
    this.watchdog?.kill('SIGKILL');
    if (this.running()) this.child.kill('SIGKILL');
  }

  private pipeLines(stream: NodeJS.ReadableStream | null): void {
    if (!stream) return;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) this.emitLine(line);
    });
  }

  private emitLine(line: string): void {
    if (line.length === 0) return;
    this.tail.push(line);
    for (const listener of this.listeners) listener(line);
  }
}

/** Run a command to completion, collecting its output (bounded by `timeoutMs`). */
export function runToCompletion(
  command: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Polls every 20 ms: peers come up within milliseconds and the harness waits on many. */
export function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  return pollUntil(what, check, timeoutMs, 20);
}

/** True once something accepts TCP connections on 127.0.0.1:`port`. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Whether an executable is on PATH. */
export async function hasCommand(name: string): Promise<boolean> {
  const result = await runToCompletion('sh', ['-c', `command -v ${name}`], 5000);
  return result.code === 0;
}
