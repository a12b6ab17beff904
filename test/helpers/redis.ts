/**
 * A real redis-server for integration tests on a free loopback port (never 6379), no
 * persistence, in a temp dir; dies with the test process (see child.ts).
 *
 *   const redis = await startRedis();   // redis.url = 'redis://127.0.0.1:P'
 *   await redis.stop(); await redis.restart();   // outage tests: same port again
 *   after(() => redis.destroy());
 */
import net from 'node:net';
import { freePort, GiveUp, makeTempDir, ServerProcess, startWithRetries } from './child';

const REDIS_BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const READY_TIMEOUT_MS = 10_000;

export interface RedisHandle {
  readonly port: number;
  readonly url: string;
  running(): boolean;
  /** Stop the server (SIGKILL by default: an outage, not a shutdown); the handle can restart it. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start again on the same port; resolves once it answers PING. */
  restart(): Promise<void>;
  /** Stop for good and remove the temp dir. Safe to call twice. */
  destroy(): Promise<void>;
}

class RedisServer implements RedisHandle {
  readonly process: ServerProcess;
  readonly url: string;

  constructor(readonly port: number) {
    this.url = `redis://127.0.0.1:${port}`;
    const dir = makeTempDir('redis');
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--daemonize', 'no',
      '--loglevel', 'warning',
    ];
    this.process = new ServerProcess(REDIS_BIN, () => args, dir);
  }

  running(): boolean {
    return this.process.running();
  }

  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.process.kill(signal);
  }

  async restart(): Promise<void> {
    await this.process.startAndWait(`redis-server on port ${this.port}`, () => this.ready(), READY_TIMEOUT_MS);
  }

  async destroy(): Promise<void> {
    await this.process.destroy();
  }

  private async ready(): Promise<boolean> {
    if (!this.running()) throw new GiveUp(this.process.withOutput('redis-server exited'));
    return (await ping(this.port)) === '+PONG';
  }
}

/** Start redis-server; retries on new ports if one got taken between picking and binding. */
export async function startRedis(): Promise<RedisHandle> {
  return startWithRetries(
    async () => new RedisServer(await freePort()),
    (server) => server.restart(),
    (server) => server.destroy(),
  );
}

/** One inline PING over a raw socket: no client library state to clean up. */
function ping(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(1000, () => socket.destroy(new Error('PING timed out')));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) {
        socket.end();
        resolve(reply.trim());
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('connection closed before PING reply')));
  });
}
