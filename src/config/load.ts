import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import YAML from 'yaml';
import { SwitchboardError } from '../errors';
import { parseDuration } from './duration';
import { configSchema, validateConfig, type ConfigFile, type Duration } from './schema';
import type { SwitchboardConfig } from './types';

/**
 * Resolves the configuration: config file < SWITCHBOARD_* environment < flags. Every value,
 * whatever its source, goes through the one schema (src/config/schema.ts); the first invalid
 * value throws a ConfigError naming its source, its field path and the reason.
 */

export type Role = 'all' | 'registry' | 'proxy';
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

const ALL_ROLES: readonly Role[] = ['all', 'registry', 'proxy'];
const SERVING_PROXY: readonly Role[] = ['all', 'proxy'];
const SERVING_REGISTRY: readonly Role[] = ['all', 'registry'];

export const SETTINGS: readonly Setting[] = [
  { flag: 'log-level', path: 'logLevel', type: 'string', arg: 'LEVEL', roles: ALL_ROLES, help: 'log level: fatal|error|warn|info|debug|trace|silent' },
  { flag: 'domain', path: 'domain', type: 'string', arg: 'NAME', roles: SERVING_PROXY, help: 'Host suffix: <service>.<domain> routes to <service>' },
  { flag: 'data-dir', path: 'dataDir', type: 'string', arg: 'DIR', roles: SERVING_REGISTRY, help: 'embedded store directory (journal, snapshot, lock)' },
  { flag: 'proxy-listen', path: 'proxy.listen', type: 'string', arg: 'HOST:PORT', roles: SERVING_PROXY, help: 'proxy (data plane) host:port' },
  { flag: 'api-listen', path: 'api.listen', type: 'string', arg: 'HOST:PORT', roles: SERVING_REGISTRY, help: 'registry API (Consul-compatible) host:port' },
  { flag: 'admin-listen', path: 'admin.listen', type: 'string', arg: 'HOST:PORT', roles: ALL_ROLES, help: 'admin host:port (/metrics, /healthz, /readyz)' },
  { flag: 'api-max-wait', path: 'api.maxWait', type: 'duration', roles: SERVING_REGISTRY, help: 'cap on ?wait= of blocking queries' },
  { flag: 'path-routing', path: 'proxy.pathRouting', type: 'boolean', roles: SERVING_PROXY, help: 'route /<service>/... to <service>' },
  { flag: 'strip-service-prefix', path: 'proxy.stripServicePrefix', type: 'boolean', roles: SERVING_PROXY, help: 'drop /<service> before forwarding' },
  { flag: 'connect-timeout', path: 'proxy.timeouts.connect', type: 'duration', roles: SERVING_PROXY, help: 'upstream TCP connect timeout' },
  { flag: 'response-timeout', path: 'proxy.timeouts.response', type: 'duration', roles: SERVING_PROXY, help: 'time to the upstream response headers' },
  { flag: 'idle-timeout', path: 'proxy.timeouts.idle', type: 'duration', roles: SERVING_PROXY, help: 'idle keep-alive sockets to upstreams close after this' },
  { flag: 'drain', path: 'proxy.drain', type: 'duration', roles: SERVING_PROXY, help: 'on SIGTERM, how long in-flight requests may finish' },
  { flag: 'resync-interval', path: 'proxy.resyncInterval', type: 'duration', roles: SERVING_PROXY, help: 'anti-entropy check of the catalog revision' },
  { flag: 'registry', path: 'proxy.registry', type: 'string', arg: 'URL', roles: ['proxy'], help: 'registry base URL, e.g. http://127.0.0.1:8500' },
  { flag: 'compact-every', path: 'store.compactEvery', type: 'integer', roles: SERVING_REGISTRY, help: 'compact the journal after this many records' },
  { flag: 'store', path: 'store.kind', type: 'string', arg: 'KIND', roles: ['registry'], help: 'embedded|etcd' },
  { flag: 'etcd-endpoints', path: 'store.etcd.endpoints', type: 'list', roles: ['registry'], help: 'comma-separated host:port list' },
  { flag: 'etcd-prefix', path: 'store.etcd.prefix', type: 'string', arg: 'PREFIX', roles: ['registry'], help: 'key prefix in etcd' },
  { flag: 'bus', path: 'bus.kind', type: 'string', arg: 'KIND', roles: ['registry', 'proxy'], help: 'local|redis' },
  { flag: 'redis-url', path: 'bus.redis.url', type: 'string', arg: 'URL', roles: ['registry', 'proxy'], help: 'redis:// URL of the invalidation bus' },
  { flag: 'redis-channel', path: 'bus.redis.channel', type: 'string', arg: 'NAME', roles: ['registry', 'proxy'], help: 'pub/sub channel name' },
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
    api: { listen: file.api.listen, maxWaitMs: ms(file.api.maxWait) },
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
    },
    admin: { listen: file.admin.listen },
    store: { kind: file.store.kind, compactEvery: file.store.compactEvery, etcd: { ...file.store.etcd } },
    bus: { kind: file.bus.kind, redis: { ...file.bus.redis } },
  };
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
