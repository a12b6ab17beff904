/**
 * Shared plumbing for test helpers that run real server processes (etcd, redis-server):
 * free loopback ports, temp dirs, and making sure nothing outlives the test process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A port the OS just handed out; another process may still grab it before we bind (callers retry). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function makeTempDir(tag: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `switchboard-${tag}-`));
}

/** Thrown from a `waitFor` check to stop polling at once (e.g. the server process exited). */
export class GiveUp extends Error {}

/** Poll `check` until it returns true; rejects with `what` once `timeoutMs` passes. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}

/** Keeps the last lines a process wrote, so a failed start can say why. */
export class OutputTail {
  private lines: string[] = [];
  constructor(private readonly max = 40) {}
  push(chunk: Buffer | string): void {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    this.lines.push(...text.split('\n').filter((l) => l.length > 0));
    if (this.lines.length > this.max) this.lines = this.lines.slice(-this.max);
  }
  text(): string {
    return this.lines.join('\n');
  }
}

interface Killable {
  /** Synchronous: runs from the process 'exit' hook. */
  killNow(): void;
}

const live = new Set<Killable>();
let exitHookInstalled = false;

/** Last resort for a test that crashed or forgot stop(): kill `p` if it still runs when we exit. */
export function killAtExit(p: Killable): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const q of live) q.killNow();
    });
  }
  live.add(p);
}

/** `p` was stopped on purpose: the exit hook must leave it be. */
export function forgetAtExit(p: Killable): void {
  live.delete(p);
}

/**
 * One server child process. Besides the 'exit' hook it gets a watchdog: a tiny `sh` that
 * waits for EOF on a pipe from us and then SIGKILLs the server and removes its temp dir.
 * The pipe closes however this process dies (even SIGKILL or a test-runner timeout), so
 * no etcd or redis-server outlives a test.
 */
export class ServerProcess {
  private child?: ChildProcess;
  private watchdog?: ChildProcess;
  private exited?: Promise<void>;
  private readonly tail = new OutputTail();

  constructor(
    readonly command: string,
    private readonly args: () => string[],
    readonly dir: string,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  output(): string {
    return this.tail.text();
  }

  start(): void {
    if (this.running()) throw new Error(`${this.command} is already running`);
    const child = spawn(this.command, this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (b: Buffer) => this.tail.push(b));
    child.stderr?.on('data', (b: Buffer) => this.tail.push(b));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('error', (err) => this.tail.push(Buffer.from(`spawn error: ${err.message}`)));
    this.child = child;
    if (child.pid !== undefined) this.watchdog = startWatchdog(child.pid, this.dir);
    killAtExit(this);
  }

  /** Starts the process and polls `ready` until true; a failure carries what the process wrote. */
  async startAndWait(what: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    this.start();
    await waitFor(what, ready, timeoutMs).catch((err) => {
      throw err instanceof GiveUp ? err : new Error(this.withOutput(err));
    });
  }

  /** `err`'s message followed by the process's last output lines. */
  withOutput(err: unknown): string {
    const message = err instanceof Error ? err.message : String(err);
    return `${message}\n--- ${this.command} output ---\n${this.output()}`;
  }

  /** Send `signal` and wait until the process is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.disarmWatchdog();
    if (this.running()) this.child?.kill(signal);
    await this.exited;
  }

  /** SIGTERM, escalating to SIGKILL if the server takes too long to shut down. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running()) return this.kill();
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    try {
      await this.kill('SIGTERM');
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop for good and delete the temp dir. SIGKILL: the data is thrown away anyway. */
  async destroy(): Promise<void> {
    await this.kill('SIGKILL');
    forgetAtExit(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous: used from the process 'exit' hook. */
  killNow(): void {
    this.disarmWatchdog();
    if (this.running()) this.child?.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** We are stopping the server ourselves: the watchdog must not act (the pid may be reused). */
  private disarmWatchdog(): void {
    this.watchdog?.kill('SIGKILL');
    this.watchdog = undefined;
  }
}

/**
 * Creates and starts a server up to `attempts` times, discarding each failed one: a port
 * picked free may be taken by someone else before the server binds it.
 */
export async function startWithRetries<T>(
  create: () => Promise<T>,
  start: (server: T) => Promise<void>,
  discard: (server: T) => Promise<void>,
  attempts = 3,
): Promise<T> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const server = await create();
    try {
      await start(server);
      return server;
    } catch (err) {
      lastError = err;
      await discard(server);
    }
  }
  throw lastError;
}

/** A `sh` that SIGKILLs `pid` (and removes `dir`, if given) once our end of its stdin pipe closes, however we die. */
export function startWatchdog(pid: number, dir?: string): ChildProcess {
  const removeDir = dir === undefined ? '' : `; rm -rf '${dir.replace(/'/g, '')}'`;
  const script = `read _ignored; kill -9 ${pid} 2>/dev/null${removeDir}`;
  const watchdog = spawn('sh', ['-c', script], { stdio: ['pipe', 'ignore', 'ignore'] });
  watchdog.on('error', () => undefined);
  // Neither the watchdog nor its pipe may keep the test process alive.
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return watchdog;
}
