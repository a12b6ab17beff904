/**
 * A real redis-server for integration tests on a free loopback port (never 6379), no
 * persistence, in a temp dir; dies with the test process (see child.ts).
 *
 *   const redis = await startRedis();   // redis.url = 'redis://127.0.0.1:P'
 *   await redis.stop(); await redis.restart();   // outage tests: same port again
 *   after(() => redis.destroy());
 *
 * The same binary also runs the other topologies the bus accepts:
 *
 *   const sentinel = await startSentinel(redis);   // sentinel.url = 'redis+sentinel://127.0.0.1:S/mymaster'
 *   const cluster = await startRedisCluster(3);    // cluster.url = 'redis+cluster://127.0.0.1:A,127.0.0.1:B,…'
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, GiveUp, makeTempDir, ServerProcess, startWithRetries, waitFor } from './child';

const REDIS_BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const REDIS_CLI_BIN = process.env.REDIS_CLI_BIN ?? 'redis-cli';
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

/** What turns a plain redis-server into a sentinel or a cluster node. */
interface ServerMode {
  /** A config file path must be redis-server's first argument. */
  leadArgs?: string[];
  extraArgs?: string[];
  dir?: string;
  /** When the started server counts as up (default: it answers PING). */
  isReady?: (port: number) => Promise<boolean>;
}

class RedisServer implements RedisHandle {
  readonly process: ServerProcess;
  readonly url: string;

  private readonly isReady: (port: number) => Promise<boolean>;

  constructor(readonly port: number, mode: ServerMode = {}) {
    this.url = `redis://127.0.0.1:${port}`;
    this.isReady = mode.isReady ?? (async (p) => (await ping(p)) === '+PONG');
    const dir = mode.dir ?? makeTempDir('redis');
    const args = [
      ...(mode.leadArgs ?? []),
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--daemonize', 'no',
      '--loglevel', 'warning',
      ...(mode.extraArgs ?? []),
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
    return this.isReady(this.port);
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

export interface SentinelHandle {
  readonly port: number;
  readonly masterName: string;
  /** `redis+sentinel://127.0.0.1:<port>/<masterName>` */
  readonly url: string;
  destroy(): Promise<void>;
}

/**
 * One sentinel (quorum 1) monitoring `master` under `masterName`; resolves once the sentinel
 * hands out the master's address, so a client can connect straight away.
 */
export async function startSentinel(master: RedisHandle, masterName = 'mymaster'): Promise<SentinelHandle> {
  const server = await startWithRetries(
    async () => sentinelServer(await freePort(), master.port, masterName),
    (s) => s.restart(),
    (s) => s.destroy(),
  );
  return {
    port: server.port,
    masterName,
    url: `redis+sentinel://127.0.0.1:${server.port}/${masterName}`,
    destroy: () => server.destroy(),
  };
}

function sentinelServer(port: number, masterPort: number, masterName: string): RedisServer {
  // Sentinel insists on a writable config file: it records what it learns there.
  const dir = makeTempDir('sentinel');
  const config = path.join(dir, 'sentinel.conf');
  writeFileSync(config, `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 1\n`);
  const knowsMaster = async (p: number): Promise<boolean> =>
    (await inlineCommand(p, `SENTINEL get-master-addr-by-name ${masterName}`)) === '*2';
  return new RedisServer(port, { leadArgs: [config, '--sentinel'], dir, isReady: knowsMaster });
}

export interface RedisClusterHandle {
  /** Client ports of the masters, in start order. */
  readonly ports: number[];
  /** The masters, for outage tests: a restarted node rejoins with its saved nodes.conf. */
  readonly nodes: RedisHandle[];
  /** `redis+cluster://` listing every node as a seed. */
  readonly url: string;
  destroy(): Promise<void>;
}

/**
 * A Redis Cluster of `masters` nodes without replicas, slots spread by `redis-cli --cluster
 * create`; resolves once every node reports cluster_state:ok. Each node gets its own free
 * cluster-bus port (`cluster-port`), not the fixed client port + 10000.
 */
export async function startRedisCluster(masters = 3): Promise<RedisClusterHandle> {
  const nodes: RedisServer[] = [];
  const destroy = async (): Promise<void> => void (await Promise.all(nodes.map((n) => n.destroy())));
  try {
    for (let i = 0; i < masters; i++) nodes.push(await startClusterNode());
    await createCluster(nodes.map((n) => n.port));
  } catch (err) {
    await destroy();
    throw err;
  }
  const ports = nodes.map((n) => n.port);
  return { ports, nodes, url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, destroy };
}

function startClusterNode(): Promise<RedisServer> {
  const clusterArgs = (busPort: number): string[] => [
    '--cluster-enabled', 'yes',
    '--cluster-port', String(busPort),
    '--cluster-config-file', 'nodes.conf',
    '--cluster-node-timeout', '5000',
  ];
  return startWithRetries(
    async () => {
      const port = await freePort();
      let busPort = await freePort();
      while (busPort === port) busPort = await freePort();
      return new RedisServer(port, { extraArgs: clusterArgs(busPort), dir: makeTempDir('redis-cluster') });
    },
    (s) => s.restart(),
    (s) => s.destroy(),
  );
}

const CLUSTER_CREATE_TIMEOUT_MS = 40_000;

async function createCluster(ports: number[]): Promise<void> {
  const nodes = ports.map((p) => `127.0.0.1:${p}`);
  const args = ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'];
  // redis-cli waits for every node to have met the others by gossip: seconds when the machine
  // is busy (seen: over 10 s under the full suite), so it gets a bound of its own.
  await promisify(execFile)(REDIS_CLI_BIN, args, { timeout: CLUSTER_CREATE_TIMEOUT_MS }).catch((err: Error & { stdout?: string; stderr?: string }) => {
    throw new Error(`redis-cli --cluster create failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  });
  // Nodes learn the final slot map by gossip; a client seeded too early may be sent around.
  await waitFor('every cluster node to report cluster_state:ok', async () => {
    const infos = await Promise.all(ports.map((p) => inlineCommand(p, 'CLUSTER INFO')));
    return infos.every((info) => info.includes('cluster_state:ok'));
  }, READY_TIMEOUT_MS);
}

/** One inline PING over a raw socket: no client library state to clean up. */
function ping(port: number): Promise<string> {
  return inlineCommand(port, 'PING');
}

/**
 * One inline command over a raw socket; resolves with the reply's first line, or for a bulk
 * string its payload. Enough for PING, INFO-like replies and "is this array empty" checks.
 */
function inlineCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(1000, () => socket.destroy(new Error(`${command} timed out`)));
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      const complete = completeReply(reply);
      if (complete === undefined) return;
      socket.end();
      resolve(complete);
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`connection closed before the ${command} reply`)));
  });
}

function completeReply(reply: string): string | undefined {
  const eol = reply.indexOf('\r\n');
  if (eol < 0) return undefined;
  const first = reply.slice(0, eol);
  if (!first.startsWith('$') || first === '$-1') return first.trim();
  const body = Buffer.from(reply.slice(eol + 2), 'utf8');
  const length = Number(first.slice(1));
  return body.length >= length + 2 ? body.subarray(0, length).toString('utf8') : undefined;
}
