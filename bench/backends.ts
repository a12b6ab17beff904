/**
 * The harness side of the backends: starts bench/backend-server.js as a child process and
 * talks to it over IPC. Instance `app` (the one every peer forwards to in the small / cpu /
 * large scenarios) is opened at start.
 */
import path from 'node:path';
import { ManagedProcess } from './child';
import type { BackendReply, BackendRequest } from './backend-protocol';

/** Distributive Omit, so each member of the request union keeps its own fields. */
type WithoutSeq<T> = T extends unknown ? Omit<T, 'seq'> : never;

export const APP_INSTANCE = 'app';

export class Backends {
  private seq = 0;
  private readonly pending = new Map<number, (reply: BackendReply) => void>();

  private appInstancePort = 0;

  private constructor(private readonly proc: ManagedProcess) {
    proc.process.on('message', (reply: BackendReply) => {
      this.pending.get(reply.seq)?.(reply);
      this.pending.delete(reply.seq);
    });
  }

  static async start(): Promise<Backends> {
    const script = path.join(__dirname, 'backend-server.js');
    const proc = new ManagedProcess(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    await waitForReady(proc);
    const backends = new Backends(proc);
    backends.appInstancePort = await backends.open(APP_INSTANCE);
    return backends;
  }

  /** Port of the `app` instance. */
  get appPort(): number {
    return this.appInstancePort;
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** Open a new instance listening on a free loopback port; returns the port. */
  async open(id: string, options: { track?: boolean } = {}): Promise<number> {
    const reply = await this.call({ op: 'open', id, track: options.track ?? false });
    if (reply.port === undefined) throw new Error(`backend did not report a port for ${id}`);
    return reply.port;
  }

  /** Stop an instance the way a real one shuts down (graceful, bounded). */
  async close(id: string): Promise<void> {
    await this.call({ op: 'close', id });
  }

  /** Arrival times (monotonic ms) of requests at tracked instances. */
  async arrivals(ids: string[]): Promise<Record<string, number[]>> {
    const reply = await this.call({ op: 'arrivals', ids });
    return reply.arrivals ?? {};
  }

  /** From now on the instance answers after `delayMs`, or (hang) never. */
  async behave(id: string, behaviour: { hang?: boolean; delayMs?: number }): Promise<void> {
    await this.call({ op: 'behave', id, hang: behaviour.hang ?? false, delayMs: behaviour.delayMs ?? 0 });
  }

  async stop(): Promise<void> {
    await this.proc.stop(2000);
  }

  private call(request: WithoutSeq<BackendRequest>): Promise<BackendReply> {
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new Error(`backend did not answer ${request.op} within 10 s`));
      }, 10_000);
      this.pending.set(seq, (reply) => {
        clearTimeout(timer);
        if (reply.error !== undefined) reject(new Error(`backend ${request.op}: ${reply.error}`));
        else resolve(reply);
      });
      this.proc.process.send({ ...request, seq } as BackendRequest);
    });
  }
}

function waitForReady(proc: ManagedProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`backend server did not start:\n${proc.tail.text()}`)), 10_000);
    proc.process.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.process.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`backend server exited:\n${proc.tail.text()}`));
    });
  });
}
