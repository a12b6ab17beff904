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
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}

/** Keeps the last lines a process wrote, so a failed start can say why. */
class OutputTail {
  private lines: string[] = [];
  constructor(private readonly max = 40) {}
  push(chunk: Buffer): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
    if (this.lines.length > this.max) this.lines = this.lines.slice(-this.max);
  }
  text(): string {
    return this.lines.join('\n');
  }
}

const live = new Set<ServerProcess>();
let exitHookInstalled = false;

/** Last resort for a test that crashed or forgot stop(): kill what is still running. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of live) p.killNow();
  });
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
  ) {
    installExitHook();
  }

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
    live.add(this);
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
    live.delete(this);
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

/** A `sh` that SIGKILLs `pid` (and removes `dir`) once our end of its stdin pipe closes, however we die. */
export function startWatchdog(pid: number, dir: string): ChildProcess {
  const script = `read _ignored; kill -9 ${pid} 2>/dev/null; rm -rf '${dir.replace(/'/g, '')}'`;
  const watchdog = spawn('sh', ['-c', script], { stdio: ['pipe', 'ignore', 'ignore'] });
  watchdog.on('error', () => undefined);
  // Neither the watchdog nor its pipe may keep the test process alive.
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return watchdog;
}
