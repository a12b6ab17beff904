import type { LogLevel } from '../log';

/**
 * The resolved configuration: file < SWITCHBOARD_* environment < flags, validated against
 * src/config/schema.ts and then frozen. Durations are milliseconds here; the file may use
 * strings like "30s".
 */
export interface SwitchboardConfig {
  logLevel: LogLevel;
  /** Host suffix: `users.<domain>` routes to service `users`. */
  domain: string;
  dataDir: string;
  api: ApiConfig;
  proxy: ProxyConfig;
  admin: { listen: string };
  store: StoreConfig;
  bus: BusConfig;
}

export interface ApiConfig {
  listen: string;
  /** Upper bound for `?wait=` on blocking queries (Consul caps at 10 min). */
  maxWaitMs: number;
}

export interface RouteRule {
  /** Exact Host (port ignored, case-insensitive). Exactly one of host / prefix. */
  host?: string;
  /** Path prefix, starts with `/`; longest match wins. */
  prefix?: string;
  service: string;
  /** Remove the matched prefix before forwarding. */
  strip: boolean;
}

export interface ProxyConfig {
  listen: string;
  /** Registry base URL for `switchboard proxy` (distributed mode); unused by `all`. */
  registry?: string;
  /** Route `/<service>/…` to `<service>` when no explicit rule matches. */
  pathRouting: boolean;
  /** Strip `/<service>` in implicit path routing. */
  stripServicePrefix: boolean;
  routes: RouteRule[];
  timeouts: {
    connectMs: number;
    /** Time to the upstream's response headers. */
    responseMs: number;
    /** Idle keep-alive sockets to upstreams are closed after this. */
    idleMs: number;
  };
  /** SIGTERM: how long in-flight requests may take before we close anyway. */
  drainMs: number;
  /** Periodic anti-entropy check of the registry's revision (distributed mode). */
  resyncIntervalMs: number;
}

export interface StoreConfig {
  kind: 'embedded' | 'etcd';
  /** Embedded store: compact (snapshot + truncate) after this many journal records. */
  compactEvery: number;
  etcd: { endpoints: string[]; prefix: string };
}

export interface BusConfig {
  kind: 'local' | 'redis';
  redis: { url: string; channel: string };
}
