import type { EventEmitter } from 'node:events';
import Redis, { Cluster, type RedisOptions } from 'ioredis';
import { SwitchboardError } from '../errors';
import { ClusterSubscriber } from './cluster-subscriber';

/**
 * The `--redis` URL forms, and the ioredis client each one becomes:
 *
 *   redis://[[user]:password@]host[:port][/db]        one server (ioredis parses it)
 *   rediss://…                                         the same over TLS
 *   redis+sentinel://[[user]:password@]host:port[,host:port…]/master[/db]
 *                                                      Sentinel: ioredis asks the sentinels
 *                                                      for `master` and follows failovers
 *   rediss+sentinel://…                                the same, TLS to sentinels and Redis
 *   redis+cluster://[[user]:password@]host:port[,host:port…]
 *                                                      Redis Cluster (seed nodes): Redis.Cluster
 *   rediss+cluster://…                                 the same over TLS
 *
 * Credentials apply to the Redis servers (for Sentinel, also to the sentinels). Default
 * ports: 6379, and 26379 for sentinels.
 */

/** The part of the ioredis client API the bus uses; both Redis and Cluster provide it. */
export interface RedisConnection extends Pick<EventEmitter, 'on' | 'once' | 'off'> {
  readonly status: string;
  publish(channel: string, message: string): Promise<number>;
  subscribe(channel: string): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

interface HostPort {
  host: string;
  port: number;
}

interface MultiHostUrl {
  tls: boolean;
  mode: 'sentinel' | 'cluster';
  username?: string;
  password?: string;
  hosts: HostPort[];
  /** Path segments after the hosts: sentinel master name and optional db. */
  path: string[];
}

const MULTI_HOST_URL = /^(rediss?)\+(sentinel|cluster):\/\/(?:([^@/]*)@)?([^/]+)(?:\/(.*))?$/;

export function createRedisConnection(url: string, options: RedisOptions): RedisConnection {
  if (/^rediss?:\/\//.test(url)) return new Redis(url, options);
  const parsed = parseMultiHostUrl(url);
  const auth = { username: parsed.username, password: parsed.password };
  const tls = parsed.tls ? { tls: {} } : {};
  if (parsed.mode === 'cluster') {
    if (parsed.path.some((p) => p.length > 0)) throw invalid(url, 'a cluster URL has no path (Redis Cluster has only db 0)');
    const { enableOfflineQueue, ...redisOptions } = options;
    return new Cluster(parsed.hosts, { enableOfflineQueue, redisOptions: { ...redisOptions, ...auth, ...tls } });
  }
  const [name, db] = parsed.path;
  if (!name) throw invalid(url, 'a sentinel URL needs the master name as its path');
  return new Redis({
    ...options,
    ...auth,
    ...tls,
    sentinels: parsed.hosts,
    name,
    db: db ? parseDb(url, db) : undefined,
    sentinelUsername: parsed.username,
    sentinelPassword: parsed.password,
    enableTLSForSentinelMode: parsed.tls,
  });
}

/**
 * A connection for SUBSCRIBE only. The same as createRedisConnection except for Redis Cluster,
 * where it is a ClusterSubscriber: one node at a time, a new 'ready' after every move.
 */
export function createRedisSubscriber(url: string, options: RedisOptions): RedisConnection {
  if (/^rediss?:\/\//.test(url)) return createRedisConnection(url, options);
  const parsed = parseMultiHostUrl(url);
  if (parsed.mode !== 'cluster') return createRedisConnection(url, options);
  if (parsed.path.some((p) => p.length > 0)) throw invalid(url, 'a cluster URL has no path (Redis Cluster has only db 0)');
  return new ClusterSubscriber(parsed.hosts, { ...options, username: parsed.username, password: parsed.password, ...(parsed.tls ? { tls: {} } : {}) });
}

/** The URL without its password, for logs. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

function parseMultiHostUrl(url: string): MultiHostUrl {
  const m = MULTI_HOST_URL.exec(url);
  if (!m) throw invalid(url, 'expected redis://, rediss://, redis+sentinel:// or redis+cluster://');
  const [, scheme, mode, userinfo, hostList, rest] = m;
  const defaultPort = mode === 'sentinel' ? 26379 : 6379;
  const [user, password] = userinfo === undefined ? [] : splitUserinfo(userinfo);
  return {
    tls: scheme === 'rediss',
    mode: mode as 'sentinel' | 'cluster',
    username: user || undefined,
    password: password || undefined,
    hosts: hostList.split(',').map((h) => parseHostPort(url, h, defaultPort)),
    path: (rest ?? '').split('/').filter((p, i) => i === 0 || p.length > 0),
  };
}

function splitUserinfo(userinfo: string): [string, string | undefined] {
  const colon = userinfo.indexOf(':');
  if (colon < 0) return [decodeURIComponent(userinfo), undefined];
  return [decodeURIComponent(userinfo.slice(0, colon)), decodeURIComponent(userinfo.slice(colon + 1))];
}

function parseHostPort(url: string, text: string, defaultPort: number): HostPort {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(text);
  if (!m) throw invalid(url, `bad host "${text}"`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port < 1 || port > 65535) throw invalid(url, `bad port in "${text}"`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

function parseDb(url: string, text: string): number {
  if (!/^\d+$/.test(text)) throw invalid(url, `bad db "${text}"`);
  return Number(text);
}

function invalid(url: string, reason: string): SwitchboardError {
  return new SwitchboardError('config_invalid', `bus.redis.url ${redactRedisUrl(url)}: ${reason}`, { field: 'bus.redis.url' });
}
