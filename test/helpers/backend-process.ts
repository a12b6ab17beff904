/**
 * Controls one backend-script.js child: its port, the requests it saw (by x-request-id, kept
 * even after the process is killed) and its mode. The child exits when our end of its stdin
 * closes, which happens however this process ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

const SCRIPT = path.join(__dirname, 'backend-script.js');

export class BackendProcess {
  port = 0;
  /** x-request-id → how many times a request with it arrived. */
  readonly received = new Map<string, number>();
  requests = 0;
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private readonly waiters: Array<{ line: RegExp; resolve: () => void }> = [];

  private constructor(readonly id: string) {
    this.child = spawn(process.execPath, [SCRIPT, id], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin?.on('error', () => undefined);
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => this.onLine(line));
  }

  static async start(id: string, timeoutMs = 10_000): Promise<BackendProcess> {
    const backend = new BackendProcess(id);
    await backend.waitForLine(/^LISTENING \d+$/, timeoutMs, `${id} to listen`);
    return backend;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Switches what the backend answers; resolves once it confirmed. */
  async setMode(mode: 'ok' | '500' | 'hang' | 'slow'): Promise<void> {
    const confirmed = this.waitForLine(new RegExp(`^MODE ${mode}$`), 5_000, `${this.id} to switch to ${mode}`);
    this.child.stdin?.write(`mode ${mode}\n`);
    await confirmed;
  }

  /** kill -9; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  private onLine(line: string): void {
    const listening = /^LISTENING (\d+)$/.exec(line);
    if (listening) this.port = Number(listening[1]);
    const request = /^REQ \S+ (\S+)$/.exec(line);
    if (request) {
      this.requests++;
      this.received.set(request[1], (this.received.get(request[1]) ?? 0) + 1);
    }
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (!this.waiters[i].line.test(line)) continue;
      this.waiters[i].resolve();
      this.waiters.splice(i, 1);
    }
  }

  private waitForLine(line: RegExp, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      this.waiters.push({
        line,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}
