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
  registry: RegistryConfig;
  proxy: ProxyConfig;
  admin: { listen: string };
  store: StoreConfig;
  bus: BusConfig;
  register: RegisterConfig;
}

export interface ApiConfig {
  listen: string;
  /** Upper bound for `?wait=` on blocking queries (Consul caps at 10 min). */
  maxWaitMs: number;
  /** host:port other processes use to reach this API (leader election); default: the bound address. */
  advertise?: string;
}

export interface RegistryConfig {
  /** Election lease TTL with etcd (whole seconds): how long a dead leader holds on before another leads. */
  electionTtlMs: number;
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
    /** Time to the upstream's response headers, retries included (each try: retries.perTryTimeoutMs). */
    responseMs: number;
    /** Idle keep-alive sockets to upstreams are closed after this. */
    idleMs: number;
  };
  /** SIGTERM: how long in-flight requests may take before we close anyway. */
  drainMs: number;
  /** Periodic anti-entropy check of the registry's revision (distributed mode). */
  resyncIntervalMs: number;
  /**
   * `switchboard proxy`: data-plane processes (node:cluster workers) sharing the proxy port;
   * 1 = everything in one process. The loader fills in one per core; a ProxyConfig built by
   * hand without it means 1. The `all` role always runs one process.
   */
  workers?: number;
  // The loader always fills in the three fields below; they are optional so that a
  // ProxyConfig built by hand (tests, embedding) gets the built-in defaults.
  /** Slowloris guards on client connections. */
  clientTimeouts?: ClientTimeouts;
  /** Requests with more header lines get 431 (default 100). */
  maxRequestHeaders?: number;
  /** CIDRs whose X-Forwarded-* / Forwarded headers are kept; from anyone else they are replaced. */
  trustedProxies?: string[];
  /** The policy of every service that `services` does not name. */
  defaults?: ServicePolicy;
  /** Complete per-service policies: the file's overrides merged over `defaults`. */
  services?: Record<string, ServicePolicy>;
}

export interface ClientTimeouts {
  /** A client must send its complete request headers within this (node's headersTimeout). */
  headerMs: number;
  /** ... and its complete request, body included (node's requestTimeout); 0 = no limit. */
  requestMs: number;
}

/** Balancer policy names; src/proxy/balancers/balancer.ts has one implementation per name. */
export const BALANCER_POLICIES = ['weighted-round-robin', 'least-request', 'ring-hash', 'random'] as const;
export type BalancerPolicy = (typeof BALANCER_POLICIES)[number];

/**
 * What a failed attempt must be for a retry (Envoy's retry_on, narrowed by idempotency):
 * `connect-failure` nothing reached the upstream (any method); `reset` the connection broke
 * after the request was sent; `timeout` the per-try timeout fired; `gateway-error` 502/503/504;
 * `5xx` any 5xx. All but `connect-failure` retry idempotent methods only.
 */
export const RETRY_ON = ['connect-failure', 'reset', 'timeout', 'gateway-error', '5xx'] as const;
export type RetryOn = (typeof RETRY_ON)[number];

/** How the proxy treats one service: balancing, health, retries, limits. */
export interface ServicePolicy {
  balancer: BalancerPolicy;
  /** What ring-hash hashes: `header:<name>`, `cookie:<name>` or `ip`. */
  hashKey: string;
  slowStart: {
    /** New and returning instances ramp up over this; 0 = off. */
    windowMs: number;
    /** Envoy's aggression: 1 = linear, > 1 ramps faster at first. */
    aggression: number;
    /** Weight share an instance gets at the start of its window. */
    minWeightPercent: number;
  };
  healthCheck: {
    enabled: boolean;
    path: string;
    intervalMs: number;
    timeoutMs: number;
    healthyThreshold: number;
    unhealthyThreshold: number;
    /** Inclusive status ranges that count as a passing probe. */
    expectedStatuses: Array<[number, number]>;
    jitterMs: number;
    jitterPercent: number;
  };
  outlierDetection: {
    consecutive5xx: number;
    consecutiveGatewayFailure: number;
    baseEjectionTimeMs: number;
    maxEjectionTimeMs: number;
    maxEjectionPercent: number;
  };
  /** Below this share of available instances, balance over all of them (0 = never). */
  panicThresholdPercent: number;
  retries: {
    /** Retries after the first try (0 = no retries). */
    attempts: number;
    /** Each try's deadline for response headers; 0 = only the overall response timeout. */
    perTryTimeoutMs: number;
    retryOn: RetryOn[];
    budgetPercent: number;
    minRetryConcurrency: number;
    /** Request bodies up to this many bytes are buffered so a retry can resend them. */
    bufferBodyUpTo: number;
  };
  limits: {
    maxConcurrent: number;
    maxPending: number;
    maxPendingWaitMs: number;
  };
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

/** `switchboard register`: one instance, registered with a TTL check and heartbeated. */
export interface RegisterConfig {
  /** Required by the register role. */
  service?: string;
  /** Default: `<service>-<address>-<port>`. */
  id?: string;
  address: string;
  /** Required by the register role. */
  port?: number;
  tags: string[];
  ttlMs: number;
  /** Consul's DeregisterCriticalServiceAfter; 0 = never. */
  deregisterAfterMs: number;
}
