import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import YAML from 'yaml';
import { SwitchboardError } from '../errors';
import { parseDuration } from './duration';
import {
  configSchema,
  parseStatusRange,
  validateConfig,
  type ConfigFile,
  type Duration,
  type ServicePolicyFile,
  type ServicePolicyOverrides,
} from './schema';
import type { ClientTimeouts, ServicePolicy, SwitchboardConfig } from './types';

/**
 * Resolves the configuration: config file < SWITCHBOARD_* environment < flags. Every value,
 * whatever its source, goes through the one schema (src/config/schema.ts); the first invalid
 * value throws a ConfigError naming its source, its field path and the reason.
 */

export type Role = 'all' | 'registry' | 'proxy' | 'register';
type ValueType = 'string' | 'integer' | 'boolean' | 'duration' | 'list';

/** One setting that can come from a flag and an environment variable. */
export interface Setting {
  /** Flag name without dashes; the environment variable is SWITCHBOARD_ + it in UPPER_SNAKE. */
  flag: string;
  /** Field path in the config file. */
  path: string;
  type: ValueType;
  help: string;
  /** Placeholder in --help (default: from the type). */
  arg?: string;
  /** Roles that accept the flag (the environment variable is read by every role). */
  roles: readonly Role[];
}

const ALL_ROLES: readonly Role[] = ['all', 'registry', 'proxy', 'register'];
const LISTENING_ROLES: readonly Role[] = ['all', 'registry', 'proxy'];
const SERVING_PROXY: readonly Role[] = ['all', 'proxy'];
const SERVING_REGISTRY: readonly Role[] = ['all', 'registry'];

export const SETTINGS: readonly Setting[] = [
  { flag: 'log-level', path: 'logLevel', type: 'string', arg: 'LEVEL', roles: ALL_ROLES, help: 'log level: fatal|error|warn|info|debug|trace|silent' },
  { flag: 'domain', path: 'domain', type: 'string', arg: 'NAME', roles: SERVING_PROXY, help: 'Host suffix: <service>.<domain> routes to <service>' },
  { flag: 'data-dir', path: 'dataDir', type: 'string', arg: 'DIR', roles: SERVING_REGISTRY, help: 'embedded store directory (journal, snapshot, lock)' },
  { flag: 'proxy-listen', path: 'proxy.listen', type: 'string', arg: 'HOST:PORT', roles: SERVING_PROXY, help: 'proxy (data plane) host:port' },
  { flag: 'api-listen', path: 'api.listen', type: 'string', arg: 'HOST:PORT', roles: SERVING_REGISTRY, help: 'registry API (Consul-compatible) host:port' },
  { flag: 'admin-listen', path: 'admin.listen', type: 'string', arg: 'HOST:PORT', roles: LISTENING_ROLES, help: 'admin host:port (/metrics, /healthz, /readyz)' },
  { flag: 'api-max-wait', path: 'api.maxWait', type: 'duration', roles: SERVING_REGISTRY, help: 'cap on ?wait= of blocking queries' },
  { flag: 'path-routing', path: 'proxy.pathRouting', type: 'boolean', roles: SERVING_PROXY, help: 'route /<service>/... to <service>' },
  { flag: 'strip-service-prefix', path: 'proxy.stripServicePrefix', type: 'boolean', roles: SERVING_PROXY, help: 'drop /<service> before forwarding' },
  { flag: 'connect-timeout', path: 'proxy.timeouts.connect', type: 'duration', roles: SERVING_PROXY, help: 'upstream TCP connect timeout' },
  { flag: 'response-timeout', path: 'proxy.timeouts.response', type: 'duration', roles: SERVING_PROXY, help: 'time to the upstream response headers' },
  { flag: 'idle-timeout', path: 'proxy.timeouts.idle', type: 'duration', roles: SERVING_PROXY, help: 'idle keep-alive sockets to upstreams close after this' },
  { flag: 'drain', path: 'proxy.drain', type: 'duration', roles: SERVING_PROXY, help: 'on SIGTERM, how long in-flight requests may finish' },
  { flag: 'resync-interval', path: 'proxy.resyncInterval', type: 'duration', roles: SERVING_PROXY, help: 'anti-entropy check of the catalog revision' },
  { flag: 'client-header-timeout', path: 'proxy.clientTimeouts.header', type: 'duration', roles: SERVING_PROXY, help: 'clients must send their request headers within this' },
  { flag: 'client-request-timeout', path: 'proxy.clientTimeouts.request', type: 'duration', roles: SERVING_PROXY, help: 'clients must send their whole request within this (0 = no limit)' },
  { flag: 'max-request-headers', path: 'proxy.maxRequestHeaders', type: 'integer', roles: SERVING_PROXY, help: 'requests with more header lines get 431' },
  { flag: 'trusted-proxies', path: 'proxy.trustedProxies', type: 'list', arg: 'CIDR[,CIDR...]', roles: SERVING_PROXY, help: 'peers whose X-Forwarded-*/Forwarded headers are kept (default: none; from others they are replaced)' },
  { flag: 'workers', path: 'proxy.workers', type: 'integer', roles: ['proxy'], help: 'data-plane processes sharing the proxy port, 1 = a single process; the default is the number of cores' },
  { flag: 'registry', path: 'proxy.registry', type: 'string', arg: 'URL[,URL...]', roles: ['proxy', 'register'], help: 'registry base URLs, e.g. http://127.0.0.1:8500; tried in order' },
  { flag: 'election-ttl', path: 'registry.electionTtl', type: 'duration', roles: ['registry'], help: 'with --store etcd: lease TTL of the leader election, about how long a dead leader takes to be replaced (whole seconds, at least 1s)' },
  { flag: 'advertise', path: 'api.advertise', type: 'string', arg: 'HOST:PORT', roles: ['registry'], help: 'host:port other processes use to reach this API; none = the address it binds' },
  { flag: 'compact-every', path: 'store.compactEvery', type: 'integer', roles: SERVING_REGISTRY, help: 'compact the journal after this many records' },
  { flag: 'store', path: 'store.kind', type: 'string', arg: 'KIND', roles: ['registry'], help: 'embedded|etcd' },
  { flag: 'etcd-endpoints', path: 'store.etcd.endpoints', type: 'list', roles: ['registry'], help: 'etcd client URLs or host:port, comma-separated' },
  { flag: 'etcd-prefix', path: 'store.etcd.prefix', type: 'string', arg: 'PREFIX', roles: ['registry'], help: 'key prefix in etcd' },
  { flag: 'bus', path: 'bus.kind', type: 'string', arg: 'KIND', roles: ['all'], help: 'invalidation bus of the all role: local (registry and proxy always use Redis)' },
  { flag: 'redis', path: 'bus.redis.url', type: 'string', arg: 'URL', roles: ['registry', 'proxy'], help: 'Redis of the invalidation bus: redis://, rediss://, redis+sentinel://, redis+cluster://' },
  { flag: 'redis-channel', path: 'bus.redis.channel', type: 'string', arg: 'NAME', roles: ['registry', 'proxy'], help: 'pub/sub channel name' },
  { flag: 'service', path: 'register.service', type: 'string', arg: 'NAME', roles: ['register'], help: 'service name to register (required)' },
  { flag: 'port', path: 'register.port', type: 'integer', roles: ['register'], help: 'port of the instance (required)' },
  { flag: 'address', path: 'register.address', type: 'string', arg: 'HOST', roles: ['register'], help: 'address of the instance' },
  { flag: 'id', path: 'register.id', type: 'string', arg: 'ID', roles: ['register'], help: 'instance ID (none = <service>-<address>-<port>)' },
  { flag: 'tags', path: 'register.tags', type: 'list', roles: ['register'], help: 'tags, comma-separated (e.g. urlprefix-/api)' },
  { flag: 'ttl', path: 'register.ttl', type: 'duration', roles: ['register'], help: 'TTL of the check; heartbeats every third of it' },
  { flag: 'deregister-after', path: 'register.deregisterAfter', type: 'duration', roles: ['register'], help: 'the registry removes the instance after this long critical (0 = never)' },
];

/** The environment variable naming the config file (the `--config` flag wins over it). */
export const CONFIG_ENV = 'SWITCHBOARD_CONFIG';

export function envName(setting: Pick<Setting, 'flag'>): string {
  return `SWITCHBOARD_${setting.flag.toUpperCase().replace(/-/g, '_')}`;
}

export class ConfigError extends SwitchboardError {
  /** Where the value came from: `config file X`, `environment SWITCHBOARD_X`, `flag --x`. */
  readonly source: string;

  constructor(source: string, field: string, reason: string) {
    super('config_invalid', `${source}: ${field}: ${reason}`, { field });
    this.name = 'ConfigError';
    this.source = source;
  }
}

export interface LoadOptions {
  /** Config file (.yaml, .yml or .json); none = defaults + environment + flags. */
  file?: string;
  env: Record<string, string | undefined>;
  /** Flag values keyed by flag name without dashes (as node:util parseArgs returns them). */
  flags: Record<string, string | undefined>;
}

export function loadConfig(options: LoadOptions): Readonly<SwitchboardConfig> {
  const merged = options.file === undefined ? {} : readConfigFile(options.file);
  for (const override of [...envOverrides(options.env), ...flagOverrides(options.flags)]) {
    checkOverride(override);
    setPath(merged, override.setting.path, override.value);
  }
  const problem = validateConfig(merged);
  if (problem) throw new ConfigError('configuration', problem.path, problem.reason);
  return deepFreeze(toRuntimeConfig(merged as unknown as ConfigFile));
}

/** The default of a setting as the schema declares it (for --help). */
export function settingDefault(path: string): unknown {
  let node: unknown = configSchema;
  for (const key of path.split('.')) {
    node = (node as { properties?: Record<string, unknown> }).properties?.[key];
    if (node === undefined) return undefined;
  }
  return (node as { default?: unknown }).default;
}

function readConfigFile(file: string): Record<string, unknown> {
  const source = `config file ${file}`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(source, '(file)', `cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const parsed = parseConfigText(text, extname(file).toLowerCase() === '.json', source);
  const problem = validateConfig(parsed);
  if (problem) throw new ConfigError(source, problem.path, problem.reason);
  return parsed;
}

function parseConfigText(text: string, json: boolean, source: string): Record<string, unknown> {
  let value: unknown;
  if (json) {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(source, '(file)', `not valid JSON: ${(err as Error).message}`);
    }
  } else {
    const doc = YAML.parseDocument(text, { prettyErrors: false });
    const error = doc.errors[0];
    if (error) {
      const line = error.linePos?.[0].line;
      throw new ConfigError(source, '(file)', `not valid YAML${line ? ` (line ${line})` : ''}: ${error.message.split('\n')[0]}`);
    }
    value = doc.toJS();
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(source, '(root)', 'must be a mapping of settings');
  }
  return value as Record<string, unknown>;
}

interface Override {
  setting: Setting;
  source: string;
  value: unknown;
}

function envOverrides(env: Record<string, string | undefined>): Override[] {
  const known = new Map(SETTINGS.map((s) => [envName(s), s]));
  const overrides: Override[] = [];
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('SWITCHBOARD_') || raw === undefined || name === CONFIG_ENV) continue;
    const setting = known.get(name);
    const source = `environment ${name}`;
    // A misspelt variable would otherwise be ignored silently.
    if (!setting) throw new ConfigError(source, '(environment)', 'unknown setting (check the spelling)');
    overrides.push({ setting, source, value: coerce(raw, setting.type) });
  }
  return overrides;
}

function flagOverrides(flags: Record<string, string | undefined>): Override[] {
  const known = new Map(SETTINGS.map((s) => [s.flag, s]));
  const overrides: Override[] = [];
  for (const [flag, raw] of Object.entries(flags)) {
    if (raw === undefined) continue;
    const setting = known.get(flag);
    if (!setting) throw new ConfigError(`flag --${flag}`, '(flag)', 'unknown flag');
    overrides.push({ setting, source: `flag --${flag}`, value: coerce(raw, setting.type) });
  }
  return overrides;
}

/** Text → the schema's type where the text clearly is one; otherwise left for the schema to reject. */
function coerce(raw: string, type: ValueType): unknown {
  const text = raw.trim();
  switch (type) {
    case 'integer':
    case 'duration':
      return /^-?\d+$/.test(text) ? Number(text) : text;
    case 'boolean':
      if (text === 'true' || text === '1') return true;
      if (text === 'false' || text === '0') return false;
      return text;
    case 'list':
      return text === '' ? [] : text.split(',').map((s) => s.trim());
    default:
      return raw;
  }
}

/** Validate one value on its own so the error names the variable or flag it came from. */
function checkOverride(override: Override): void {
  const probe: Record<string, unknown> = {};
  setPath(probe, override.setting.path, override.value);
  const problem = validateConfig(probe);
  if (problem) throw new ConfigError(override.source, problem.path, problem.reason);
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]] = value;
}

function ms(value: Duration): number {
  return typeof value === 'number' ? value : (parseDuration(value) as number);
}

function toRuntimeConfig(file: ConfigFile): SwitchboardConfig {
  const { proxy } = file;
  return {
    logLevel: file.logLevel,
    domain: file.domain.toLowerCase(),
    dataDir: file.dataDir,
    api: {
      listen: file.api.listen,
      maxWaitMs: ms(file.api.maxWait),
      ...(file.api.advertise === undefined ? {} : { advertise: file.api.advertise }),
    },
    registry: { electionTtlMs: ms(file.registry.electionTtl) },
    proxy: {
      listen: proxy.listen,
      ...(proxy.registry === undefined ? {} : { registry: proxy.registry }),
      pathRouting: proxy.pathRouting,
      stripServicePrefix: proxy.stripServicePrefix,
      routes: proxy.routes.map((r) => ({ ...r })),
      timeouts: {
        connectMs: ms(proxy.timeouts.connect),
        responseMs: ms(proxy.timeouts.response),
        idleMs: ms(proxy.timeouts.idle),
      },
      drainMs: ms(proxy.drain),
      resyncIntervalMs: ms(proxy.resyncInterval),
      workers: proxy.workers,
      clientTimeouts: toClientTimeouts(proxy.clientTimeouts),
      maxRequestHeaders: proxy.maxRequestHeaders,
      trustedProxies: [...proxy.trustedProxies],
      defaults: toServicePolicy(proxy.defaults, 'proxy.defaults'),
      services: toServicePolicies(proxy.defaults, proxy.services),
    },
    admin: { listen: file.admin.listen },
    store: { kind: file.store.kind, compactEvery: file.store.compactEvery, etcd: { ...file.store.etcd } },
    bus: { kind: file.bus.kind, redis: { ...file.bus.redis } },
    register: toRegisterConfig(file.register),
  };
}

function toRegisterConfig(file: ConfigFile['register']): SwitchboardConfig['register'] {
  const { service, id, address, port, tags } = file;
  return {
    ...(service === undefined ? {} : { service }),
    ...(id === undefined ? {} : { id }),
    address,
    ...(port === undefined ? {} : { port }),
    tags: [...tags],
    ttlMs: ms(file.ttl),
    deregisterAfterMs: ms(file.deregisterAfter),
  };
}

function toClientTimeouts(file: ConfigFile['proxy']['clientTimeouts']): ClientTimeouts {
  const timeouts = { headerMs: ms(file.header), requestMs: ms(file.request) };
  // node refuses a server whose header timeout exceeds its request timeout.
  if (timeouts.requestMs > 0 && timeouts.headerMs > timeouts.requestMs) {
    throw new ConfigError('configuration', 'proxy.clientTimeouts.header', 'must not be longer than proxy.clientTimeouts.request');
  }
  return timeouts;
}

function toServicePolicies(
  defaults: ServicePolicyFile,
  overrides: Record<string, ServicePolicyOverrides>,
): Record<string, ServicePolicy> {
  const services: Record<string, ServicePolicy> = {};
  for (const [name, override] of Object.entries(overrides)) {
    services[name] = toServicePolicy(mergePolicy(defaults, override), `proxy.services.${name}`);
  }
  return services;
}

/** Section by section: `retries: { perTryTimeout: 1s }` keeps the default's other retry fields. */
function mergePolicy(defaults: ServicePolicyFile, override: ServicePolicyOverrides): ServicePolicyFile {
  const merged: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(override)) {
    const base = (defaults as unknown as Record<string, unknown>)[key];
    const isSection = typeof value === 'object' && value !== null && !Array.isArray(value);
    merged[key] = isSection ? { ...(base as object), ...value } : value;
  }
  return merged as unknown as ServicePolicyFile;
}

/** File shape → runtime shape (milliseconds, status ranges); cross-field checks the schema cannot make. */
function toServicePolicy(file: ServicePolicyFile, field: string): ServicePolicy {
  const { slowStart, healthCheck, outlierDetection, retries, limits } = file;
  const policy: ServicePolicy = {
    balancer: file.balancer,
    hashKey: file.hashKey,
    slowStart: { windowMs: ms(slowStart.window), aggression: slowStart.aggression, minWeightPercent: slowStart.minWeightPercent },
    healthCheck: {
      enabled: healthCheck.enabled,
      path: healthCheck.path,
      intervalMs: ms(healthCheck.interval),
      timeoutMs: ms(healthCheck.timeout),
      healthyThreshold: healthCheck.healthyThreshold,
      unhealthyThreshold: healthCheck.unhealthyThreshold,
      expectedStatuses: healthCheck.expectedStatuses.map((s) => parseStatusRange(s) as [number, number]),
      jitterMs: ms(healthCheck.jitter),
      jitterPercent: healthCheck.jitterPercent,
    },
    outlierDetection: {
      consecutive5xx: outlierDetection.consecutive5xx,
      consecutiveGatewayFailure: outlierDetection.consecutiveGatewayFailure,
      baseEjectionTimeMs: ms(outlierDetection.baseEjectionTime),
      maxEjectionTimeMs: ms(outlierDetection.maxEjectionTime),
      maxEjectionPercent: outlierDetection.maxEjectionPercent,
    },
    panicThresholdPercent: file.panicThreshold,
    retries: {
      attempts: retries.attempts,
      perTryTimeoutMs: ms(retries.perTryTimeout),
      retryOn: [...retries.retryOn],
      budgetPercent: retries.budgetPercent,
      minRetryConcurrency: retries.minRetryConcurrency,
      bufferBodyUpTo: retries.bufferBodyUpTo,
    },
    limits: { maxConcurrent: limits.maxConcurrent, maxPending: limits.maxPending, maxPendingWaitMs: ms(limits.maxPendingWait) },
  };
  if (policy.outlierDetection.maxEjectionTimeMs < policy.outlierDetection.baseEjectionTimeMs) {
    throw new ConfigError('configuration', `${field}.outlierDetection.maxEjectionTime`, 'must not be shorter than baseEjectionTime');
  }
  return policy;
}

interface BuiltInProxyDefaults {
  policy: ServicePolicy;
  clientTimeouts: ClientTimeouts;
  maxRequestHeaders: number;
}

let builtIn: Readonly<BuiltInProxyDefaults> | undefined;

/** The schema's defaults for the proxy, for a ProxyConfig built without the loader. */
function builtInProxyDefaults(): Readonly<BuiltInProxyDefaults> {
  if (!builtIn) {
    const file: Record<string, unknown> = { proxy: {} };
    validateConfig(file);
    const proxy = (file as unknown as ConfigFile).proxy;
    builtIn = deepFreeze({
      policy: toServicePolicy(proxy.defaults, 'proxy.defaults'),
      clientTimeouts: toClientTimeouts(proxy.clientTimeouts),
      maxRequestHeaders: proxy.maxRequestHeaders,
    });
  }
  return builtIn;
}

/** The policy a service gets when nothing configures it (what `proxy.defaults` defaults to). */
export function defaultServicePolicy(): Readonly<ServicePolicy> {
  return builtInProxyDefaults().policy;
}

export function defaultClientTimeouts(): Readonly<ClientTimeouts> {
  return builtInProxyDefaults().clientTimeouts;
}

export function defaultMaxRequestHeaders(): number {
  return builtInProxyDefaults().maxRequestHeaders;
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
