import { EventEmitter } from 'node:events';
import Redis, { type RedisOptions } from 'ioredis';
import type { RedisConnection } from './redis-url';

export interface ClusterNode {
  host: string;
  port: number;
}

/** Pause before trying the next node: doubles from 50 ms up to 1 s, back to 50 ms once one answers. */
const retryDelayMs = (attempt: number): number => Math.min(50 * 2 ** Math.min(attempt, 5), 1000);

/**
 * The bus's subscriber in Redis Cluster mode: a plain connection to one node at a time. A
 * message PUBLISHed in a cluster reaches every node, so any node will do. When that node goes
 * away, the next one is tried — the seed nodes and every node the cluster named when last
 * asked — and each new connection emits 'ready', on which the bus SUBSCRIBEs again and its
 * subscribers resync. ioredis's Cluster client moves a subscription to another node on a
 * failover without any event, so a message lost in the switch waited for the next message or
 * the periodic anti-entropy check.
 *
 * Emits what the bus listens to on any connection: 'ready', 'close', 'error', 'message'.
 */
export class ClusterSubscriber extends EventEmitter implements RedisConnection {
  status = 'connecting';
  private nodes: ClusterNode[];
  private next = 0;
  private attempt = 0;
  private conn: Redis | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    seeds: readonly ClusterNode[],
    /** Credentials, TLS and the connection name: what every node connection shares. */
    private readonly options: RedisOptions,
  ) {
    super();
    this.nodes = [...seeds];
    this.connectNext();
  }

  /** The nodes it would try, in order (tests). */
  get knownNodes(): readonly ClusterNode[] {
    return this.nodes;
  }

  async subscribe(channel: string): Promise<unknown> {
    const conn = this.conn;
    if (conn === undefined) throw new Error('redis cluster subscriber: not connected');
    try {
      return await conn.subscribe(channel);
    } catch (err) {
      // A node that will not take the SUBSCRIBE is as good as gone: the next one gets a try
      // (and a 'ready' on which the bus subscribes again).
      conn.disconnect();
      throw err;
    }
  }

  async publish(): Promise<number> {
    throw new Error('redis cluster subscriber: publish on the bus publisher connection');
  }

  async quit(): Promise<unknown> {
    this.closed = true;
    clearTimeout(this.timer);
    return this.conn?.quit();
  }

  disconnect(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.conn?.disconnect();
  }

  private connectNext(): void {
    const node = this.nodes[this.next % this.nodes.length];
    this.next++;
    // No retries of its own: a lost node is replaced by the next one, not waited for. A node
    // that accepts the connection but never answers must not hold the subscription up either.
    const conn = new Redis({ ...this.options, host: node.host, port: node.port, retryStrategy: () => null, autoResubscribe: false, maxRetriesPerRequest: 0, commandTimeout: 2000 });
    this.conn = conn;
    conn.on('error', (err: Error) => this.emit('error', err));
    conn.on('message', (channel: string, message: string) => this.emit('message', channel, message));
    conn.on('ready', () => void this.onReady(conn));
    conn.on('end', () => this.onEnd(conn));
  }

  private async onReady(conn: Redis): Promise<void> {
    try {
      this.learnNodes(String(await conn.call('CLUSTER', 'NODES')));
    } catch {
      // Not answering CLUSTER NODES (or not a cluster node): keep the list we have.
    }
    if (conn !== this.conn || this.closed) return;
    this.attempt = 0;
    this.status = 'ready';
    this.emit('ready');
  }

  private onEnd(conn: Redis): void {
    if (conn !== this.conn) return;
    const wasReady = this.status === 'ready';
    this.status = this.closed ? 'end' : 'reconnecting';
    if (wasReady) this.emit('close');
    if (this.closed) return;
    this.timer = setTimeout(() => this.connectNext(), retryDelayMs(this.attempt++));
  }

  /**
   * `CLUSTER NODES`: one line per node, `<id> <ip:port@cport[,hostname]> <flags> …`. Nodes
   * flagged failing, in handshake or without an address are left out; the seeds stay.
   */
  private learnNodes(text: string): void {
    const known = new Map(this.nodes.map((n) => [`${n.host}:${n.port}`, n]));
    for (const line of text.split('\n')) {
      const [, address, flags] = line.trim().split(' ');
      if (address === undefined || flags === undefined || /fail|handshake|noaddr/.test(flags)) continue;
      const m = /^(.+):(\d+)@\d+/.exec(address);
      if (m === null || m[1] === '') continue;
      const node = { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
      if (node.port > 0 && node.port < 65536) known.set(`${node.host}:${node.port}`, node);
    }
    this.nodes = [...known.values()];
  }
}
