import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import YAML from 'yaml';
import { SwitchboardError } from '../errors';
import type { ConfigFile, Role, ServicePolicy, ServicePolicyOverrides } from './schema';
import { CONFIG_ENV, SETTINGS, envName, type Setting } from './settings';
import type { SwitchboardConfig } from './types';
import { validateConfig } from './validate';

/**
 * Loads the configuration: config file < SWITCHBOARD_* environment < flags, validated by the
 * one schema (schema.ts, through validate.ts), which fills in every default and converts
 * durations as it goes. What it validated is the runtime configuration, frozen; the only
 * steps after it are semantic: `proxy.services.<name>` merged over `proxy.defaults`, and the
 * checks that span fields. Every invalid value throws a ConfigError naming its source, its
 * field path and the reason.
 */

export type { Role };
export { CONFIG_ENV, SETTINGS, envName, settingDefault } from './settings';

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
  return resolveConfig(merged, 'configuration');
}

/**
 * A raw configuration object (as a file spells it) → the frozen runtime configuration.
 * `source` names it in errors. Also how code that builds a configuration itself (tests,
 * embedding) gets every default: resolveConfig({ proxy: { listen: '127.0.0.1:0' } }).
 */
export function resolveConfig(raw: unknown, source = 'configuration'): Readonly<SwitchboardConfig> {
  const value = structuredClone(raw ?? {});
  const problem = validateConfig(value);
  if (problem) throw new ConfigError(source, problem.path, problem.reason);
  return deepFreeze(finish(value as ConfigFile));
}

let defaults: Readonly<SwitchboardConfig> | undefined;

/** Every default, as the schema declares them. */
export function defaultConfig(): Readonly<SwitchboardConfig> {
  defaults ??= resolveConfig({});
  return defaults;
}

/** The policy a service gets when nothing configures it (what `proxy.defaults` defaults to). */
export function defaultServicePolicy(): Readonly<ServicePolicy> {
  return defaultConfig().proxy.defaults;
}

/** The steps the schema cannot take: per-service policies, and checks that span fields. */
function finish(file: ConfigFile): SwitchboardConfig {
  const { proxy } = file;
  checkPolicy(proxy.defaults, 'proxy.defaults');
  // Turning verification off must be a decision about one service, never a blanket default.
  if (proxy.defaults.upstreamTls.skipVerify) {
    throw new ConfigError('configuration', 'proxy.defaults.upstreamTls.skipVerify', 'may only be set for one service, in proxy.services.<name>.upstreamTls');
  }
  const services: Record<string, ServicePolicy> = {};
  for (const [name, overrides] of Object.entries(proxy.services)) {
    services[name] = mergePolicy(proxy.defaults, overrides);
    checkPolicy(services[name], `proxy.services.${name}`);
  }
  const { header, request } = proxy.clientTimeouts;
  if (request > 0 && header > request) {
    throw new ConfigError('configuration', 'proxy.clientTimeouts.header', 'must not be longer than proxy.clientTimeouts.request');
  }
  // Names are case-insensitive: the domain is held in lower case, as the router compares.
  return { ...file, domain: file.domain.toLowerCase(), proxy: { ...proxy, services } };
}

/** Section by section, nested ones too: `retries: { perTryTimeout: 1s }` keeps the default's other retry fields. */
function mergePolicy(defaults: ServicePolicy, overrides: ServicePolicyOverrides): ServicePolicy {
  return mergeDeep(structuredClone(defaults) as unknown as Record<string, unknown>, overrides as Record<string, unknown>) as unknown as ServicePolicy;
}

function mergeDeep(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  for (const [key, value] of Object.entries(over)) {
    const section = typeof value === 'object' && value !== null && !Array.isArray(value);
    const into = base[key];
    base[key] = section && typeof into === 'object' && into !== null && !Array.isArray(into) ? mergeDeep(into as Record<string, unknown>, value as Record<string, unknown>) : value;
  }
  return base;
}

function checkPolicy(policy: ServicePolicy, field: string): void {
  const { certFile, keyFile } = policy.upstreamTls;
  if ((certFile === '') !== (keyFile === '')) {
    throw new ConfigError('configuration', `${field}.upstreamTls.${certFile === '' ? 'certFile' : 'keyFile'}`, 'certFile and keyFile go together');
  }
  if (policy.outlierDetection.maxEjectionTime < policy.outlierDetection.baseEjectionTime) {
    throw new ConfigError('configuration', `${field}.outlierDetection.maxEjectionTime`, 'must not be shorter than baseEjectionTime');
  }
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
  // Validated on its own first, so that an error names the file; merged as it was written.
  const problem = validateConfig(structuredClone(parsed));
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
  overrides.push(...consulEnvOverrides(env, known));
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('SWITCHBOARD_') || raw === undefined || name === CONFIG_ENV) continue;
    const setting = known.get(name);
    const source = `environment ${name}`;
    // A misspelt variable would otherwise be ignored silently.
    if (!setting) throw new ConfigError(source, '(environment)', 'unknown setting (check the spelling)');
    overrides.push({ setting, source, value: fromText(raw, setting) });
  }
  return overrides;
}

/**
 * What Consul's own tools read, below our SWITCHBOARD_ variables: CONSUL_HTTP_TOKEN (the
 * token), CONSUL_HTTP_ADDR (the registry: `host:port` or a URL; https when CONSUL_HTTP_SSL is
 * true) and CONSUL_CACERT (the CA bundle for an https registry).
 */
function consulEnvOverrides(env: Record<string, string | undefined>, known: Map<string, Setting>): Override[] {
  const overrides: Override[] = [];
  const add = (consul: string, ours: string, value: string | undefined): void => {
    const setting = known.get(ours);
    if (value === undefined || value === '' || env[ours] !== undefined || setting === undefined) return;
    overrides.push({ setting, source: `environment ${consul}`, value });
  };
  add('CONSUL_HTTP_TOKEN', 'SWITCHBOARD_TOKEN', env.CONSUL_HTTP_TOKEN);
  add('CONSUL_CACERT', 'SWITCHBOARD_CA_FILE', env.CONSUL_CACERT);
  const address = env.CONSUL_HTTP_ADDR?.trim();
  if (address !== undefined && address !== '') {
    const ssl = /^(1|true|yes)$/i.test(env.CONSUL_HTTP_SSL ?? '');
    add('CONSUL_HTTP_ADDR', 'SWITCHBOARD_REGISTRY', /^https?:\/\//.test(address) ? address : `${ssl ? 'https' : 'http'}://${address}`);
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
    overrides.push({ setting, source: `flag --${flag}`, value: fromText(raw, setting) });
  }
  return overrides;
}

/**
 * The text of a variable or flag, for the schema: Ajv's coercion does numbers and true/false;
 * what it cannot know is that a list is comma-separated, and that 1/0 mean true/false here.
 */
function fromText(raw: string, setting: Setting): unknown {
  const text = raw.trim();
  if (setting.type === 'list') return text === '' ? [] : text.split(',').map((s) => s.trim());
  if (setting.type === 'boolean' && (text === '1' || text === '0')) return text === '1';
  return setting.type === 'string' ? raw : text;
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

function deepFreeze<T>(value: T): Readonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
