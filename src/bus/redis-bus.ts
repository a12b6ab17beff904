import type { RedisOptions } from 'ioredis';
import type { Logger } from '../log';
import { counter } from '../metrics';
import type { Bus, BusSubscriber, CatalogMessage } from './bus';
import { decodeMessage, encodeMessage } from './message-codec';
import { createRedisConnection, createRedisSubscriber, redactRedisUrl, type RedisConnection } from './redis-url';

export interface RedisBusOptions {
  /** See redis-url.ts for the accepted forms (redis://, rediss://, redis+sentinel://, redis+cluster://). */
  url: string;
  channel: string;
  /**
   * Secret shared by registries and proxies (bus.redis.key): messages are signed, and carry
   * instance changes; '' or absent = unsigned names only (message-codec.ts).
   */
  key?: string;
  logger?: Logger;
  /** publish() gives up after this long (connect + PUBLISH) instead of waiting for Redis. */
  publishTimeoutMs?: number;
}

/** publish() could not reach Redis. Subscribers resync on reconnect, so callers log and go on. */
export class BusUnavailableError extends Error {
  readonly code = 'bus_unavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BusUnavailableError';
  }
}

const DEFAULT_PUBLISH_TIMEOUT_MS = 2000;
/**
 * A message names a revision and the services it touched: even 10,000 service names fit in
 * well under this. Anything longer is not ours and is not parsed.
 */
const MAX_MESSAGE_CHARS = 1024 * 1024;
const droppedTotal = counter('switchboard_bus_messages_dropped_total', 'Bus messages dropped unread, by reason', ['reason']);
const changesIgnoredTotal = counter(
  'switchboard_bus_changes_ignored_total',
  'Bus messages whose instance changes were not believed (unverified: no valid signature; malformed), used as names only',
  ['reason'],
);
/** Reconnect forever, backing off to 1 s: a proxy must catch up on its own after an outage. */
const retryStrategy = (times: number): number => Math.min(50 * 2 ** Math.min(times, 5), 1000);

/**
 * The invalidation bus over Redis pub/sub (at-most-once). Two connections, because a
 * subscribed Redis connection can do nothing but listen: the publisher connects on the first
 * publish (registries), the subscriber on the first subscribe (proxies).
 *
 * Subscribers hear onConnect only once the SUBSCRIBE is in effect — first connect and every
 * reconnect — so the resync they run then cannot miss a message published meanwhile.
 */
export class RedisBus implements Bus {
  private readonly subscribers = new Set<BusSubscriber>();
  private readonly publishTimeoutMs: number;
  private publisher?: RedisConnection;
  private listener?: RedisConnection;
  private subscribed = false;
  private closed = false;
  private readonly key: string;

  constructor(private readonly options: RedisBusOptions) {
    if (!options.channel) throw new TypeError('RedisBus: channel must not be empty');
    this.publishTimeoutMs = options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
    this.key = options.key ?? '';
  }

  get carriesChanges(): boolean {
    return this.key !== '';
  }

  get status(): string {
    const conn = this.publisher ?? this.listener;
    if (conn === undefined) return 'idle';
    return conn.status === 'ready' ? 'connected' : 'disconnected';
  }

  async publish(message: CatalogMessage): Promise<void> {
    if (this.closed) throw new BusUnavailableError('redis bus is closed');
    this.publisher ??= this.connect('publisher', false, { autoResendUnfulfilledCommands: false });
    const conn = this.publisher;
    await withTimeout(this.publishTimeoutMs, 'redis publish', async () => {
      await whenReady(conn);
      await conn.publish(this.options.channel, encodeMessage(message, this.key));
    });
  }

  subscribe(subscriber: BusSubscriber): () => void {
    this.subscribers.add(subscriber);
    if (!this.listener && !this.closed) this.listener = this.listen();
    // Already subscribed: this subscriber still gets its first onConnect (after the caller's
    // wiring finishes), as with the local bus.
    if (this.subscribed) {
      queueMicrotask(() => {
        if (this.subscribers.has(subscriber)) subscriber.onConnect();
      });
    }
    return () => this.subscribers.delete(subscriber);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscribers.clear();
    await Promise.all([this.publisher, this.listener].map((conn) => conn && quit(conn)));
  }

  private listen(): RedisConnection {
    // We re-subscribe ourselves on 'ready' so we know when the subscription is live again.
    const conn = this.connect('subscriber', true, { autoResubscribe: false }, createRedisSubscriber);
    conn.on('ready', () => void this.resubscribe(conn));
    conn.on('close', () => {
      this.subscribed = false;
    });
    conn.on('message', (channel: string, raw: string) => {
      if (channel === this.options.channel) this.deliver(raw);
    });
    return conn;
  }

  private async resubscribe(conn: RedisConnection): Promise<void> {
    try {
      await conn.subscribe(this.options.channel);
    } catch (err) {
      // The connection dropped again; its next 'ready' retries.
      this.options.logger?.warn({ err }, 'redis bus: SUBSCRIBE failed');
      return;
    }
    if (this.closed) return;
    this.subscribed = true;
    this.options.logger?.info({ channel: this.options.channel }, 'redis bus: subscribed');
    for (const s of this.subscribers) guard(this.options.logger, () => s.onConnect());
  }

  private deliver(raw: string): void {
    const decoded = raw.length > MAX_MESSAGE_CHARS ? undefined : decodeMessage(raw, this.key);
    const message = decoded?.message;
    if (message === undefined) {
      const reason = decoded === undefined ? 'too_large' : decoded.verdict;
      droppedTotal.inc({ reason });
      this.options.logger?.warn({ reason, length: raw.length, raw: raw.slice(0, 200) }, 'redis bus: dropped a message');
      return;
    }
    if (decoded?.changesIgnored !== undefined) changesIgnoredTotal.inc({ reason: decoded.changesIgnored });
    for (const s of this.subscribers) guard(this.options.logger, () => s.onMessage(message));
  }

  /**
   * The publisher queues nothing and never re-sends after a reconnect: a message that timed
   * out must not turn up later, behind newer ones.
   */
  private connect(role: string, offlineQueue: boolean, extra: Partial<RedisOptions> = {}, create = createRedisConnection): RedisConnection {
    const conn = create(this.options.url, {
      ...extra,
      connectionName: `switchboard-${role}`,
      enableOfflineQueue: offlineQueue,
      retryStrategy,
    });
    // Without an 'error' listener ioredis errors would crash the process; report each outage once.
    let down = false;
    conn.on('error', (err: Error) => {
      if (!down) this.options.logger?.warn({ err, role, url: redactRedisUrl(this.options.url) }, 'redis bus: connection lost');
      down = true;
    });
    conn.on('ready', () => {
      if (down) this.options.logger?.info({ role }, 'redis bus: reconnected');
      down = false;
    });
    return conn;
  }
}

/** Resolves once the connection is ready; rejects as soon as it is (or goes) down. */
function whenReady(conn: RedisConnection): Promise<void> {
  if (conn.status === 'ready') return Promise.resolve();
  if (conn.status === 'reconnecting' || conn.status === 'end' || conn.status === 'close') {
    return Promise.reject(new BusUnavailableError(`redis is unreachable (${conn.status})`));
  }
  return new Promise((resolve, reject) => {
    const onReady = (): void => {
      conn.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      conn.off('ready', onReady);
      reject(new BusUnavailableError('redis connection closed before it was ready'));
    };
    conn.once('ready', onReady);
    conn.once('close', onClose);
  });
}

async function withTimeout<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BusUnavailableError(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([fn(), timeout]);
  } catch (err) {
    throw err instanceof BusUnavailableError ? err : new BusUnavailableError(`${what} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** QUIT when connected (lets replies drain), otherwise just drop the socket and stop retrying. */
export async function quit(conn: RedisConnection): Promise<void> {
  if (conn.status !== 'ready') {
    conn.disconnect();
    return;
  }
  await withTimeout(1000, 'redis quit', () => conn.quit()).catch(() => conn.disconnect());
}

function guard(logger: Logger | undefined, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    logger?.error({ err }, 'redis bus: subscriber threw');
  }
}
