import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { LOG_LEVELS, type LogLevel } from '../log';
import { parseDuration } from './duration';
import { BALANCER_POLICIES, RETRY_ON, type BalancerPolicy, type RetryOn } from './types';

/**
 * The one schema for Switchboard's configuration, as a config file spells it. Environment
 * variables and flags are coerced into this shape and validated by the same schema
 * (src/config/load.ts), which also fills in every default. Durations are Go-style strings
 * ("30s", "1m30s") or numbers of milliseconds.
 *
 * `errorReason` is an annotation of ours: the sentence shown instead of Ajv's wording when a
 * value fails that sub-schema (Ajv's "must match exactly one schema in oneOf" helps nobody).
 */

/** The file's shape once defaults are filled in (durations still as written). */
export interface ConfigFile {
  logLevel: LogLevel;
  domain: string;
  dataDir: string;
  api: { listen: string; maxWait: Duration; advertise?: string };
  registry: { electionTtl: Duration };
  proxy: {
    listen: string;
    registry?: string;
    pathRouting: boolean;
    stripServicePrefix: boolean;
    routes: Array<{ host?: string; prefix?: string; service: string; strip: boolean }>;
    timeouts: { connect: Duration; response: Duration; idle: Duration };
    drain: Duration;
    resyncInterval: Duration;
    workers: number;
    clientTimeouts: { header: Duration; request: Duration };
    maxRequestHeaders: number;
    trustedProxies: string[];
    defaults: ServicePolicyFile;
    services: Record<string, ServicePolicyOverrides>;
  };
  admin: { listen: string };
  store: {
    kind: 'embedded' | 'etcd';
    compactEvery: number;
    etcd: { endpoints: string[]; prefix: string };
  };
  bus: { kind: 'local' | 'redis'; redis: { url: string; channel: string } };
  register: {
    service?: string;
    id?: string;
    address: string;
    port?: number;
    tags: string[];
    ttl: Duration;
    deregisterAfter: Duration;
  };
}

export type Duration = string | number;

/** A service policy as the file spells it, defaults filled in. */
export interface ServicePolicyFile {
  balancer: BalancerPolicy;
  hashKey: string;
  slowStart: { window: Duration; aggression: number; minWeightPercent: number };
  healthCheck: {
    enabled: boolean;
    path: string;
    interval: Duration;
    timeout: Duration;
    healthyThreshold: number;
    unhealthyThreshold: number;
    expectedStatuses: Array<number | string>;
    jitter: Duration;
    jitterPercent: number;
  };
  outlierDetection: {
    consecutive5xx: number;
    consecutiveGatewayFailure: number;
    baseEjectionTime: Duration;
    maxEjectionTime: Duration;
    maxEjectionPercent: number;
  };
  panicThreshold: number;
  retries: {
    attempts: number;
    perTryTimeout: Duration;
    retryOn: RetryOn[];
    budgetPercent: number;
    minRetryConcurrency: number;
    bufferBodyUpTo: number;
  };
  limits: { maxConcurrent: number; maxPending: number; maxPendingWait: Duration };
}

/** `proxy.services.<name>`: any subset of a policy, merged over `proxy.defaults` section by section. */
export type ServicePolicyOverrides = {
  [K in keyof ServicePolicyFile]?: ServicePolicyFile[K] extends object ? Partial<ServicePolicyFile[K]> : ServicePolicyFile[K];
};

export const LISTEN_REASON = 'must be host:port with a port from 0 to 65535';

/** `host:port` or `[ipv6]:port`; undefined when the text is not a listen address. */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? m[2], port };
}

function duration(defaultValue: string, options: { allowZero?: boolean } = {}): object {
  const allowZero = options.allowZero ?? false;
  return {
    type: ['string', 'integer'],
    format: allowZero ? 'duration' : 'positive-duration',
    ...(allowZero ? { minimum: 0 } : { exclusiveMinimum: 0 }),
    default: defaultValue,
    errorReason: allowZero
      ? 'must be a duration like "10s" or "1m30s", or a number of milliseconds'
      : 'must be a positive duration like "10s" or "1m30s", or a number of milliseconds',
  };
}

function listen(defaultValue: string): object {
  return { type: 'string', format: 'listen', default: defaultValue, errorReason: LISTEN_REASON };
}

function section(properties: Record<string, object>): object {
  return { type: 'object', additionalProperties: false, default: {}, properties };
}

/** Schema builders that attach defaults only for `proxy.defaults`, never for overrides. */
interface PolicySchemaBuilders {
  d(value: unknown): object;
  dur(value: string, allowZero?: boolean): object;
  int(min: number, value: number, max?: number): object;
  percent(value: number): object;
  part(properties: Record<string, object>): object;
}

function policyBuilders(withDefaults: boolean): PolicySchemaBuilders {
  const d = (value: unknown): object => (withDefaults ? { default: value } : {});
  return {
    d,
    dur: (value, allowZero = false) => {
      const { default: _omit, ...rest } = duration(value, { allowZero }) as { default: string };
      return { ...rest, ...d(value) };
    },
    int: (min, value, max) => ({ type: 'integer', minimum: min, ...(max === undefined ? {} : { maximum: max }), ...d(value) }),
    percent: (value) => ({ type: 'number', minimum: 0, maximum: 100, ...d(value) }),
    part: (properties) => ({ type: 'object', additionalProperties: false, ...d({}), properties }),
  };
}

/**
 * One service policy. `proxy.defaults` gets it with defaults; `proxy.services.<name>` gets it
 * without, so that an override names only what it changes.
 */
function servicePolicy(withDefaults: boolean): object {
  const b = policyBuilders(withDefaults);
  return b.part({
    balancer: { type: 'string', enum: [...BALANCER_POLICIES], ...b.d('weighted-round-robin') },
    hashKey: {
      type: 'string',
      pattern: "^(ip|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|cookie:[^\\s=;,]+)$",
      errorReason: 'must be "ip", "header:<name>" or "cookie:<name>"',
      ...b.d('ip'),
    },
    slowStart: b.part({
      window: b.dur('0s', true),
      aggression: { type: 'number', exclusiveMinimum: 0, ...b.d(1) },
      minWeightPercent: { type: 'number', exclusiveMinimum: 0, maximum: 100, ...b.d(10) },
    }),
    healthCheck: healthCheckSchema(b),
    outlierDetection: b.part({
      consecutive5xx: b.int(0, 5),
      consecutiveGatewayFailure: b.int(0, 3),
      baseEjectionTime: b.dur('30s'),
      maxEjectionTime: b.dur('300s'),
      maxEjectionPercent: b.percent(10),
    }),
    panicThreshold: b.percent(50),
    retries: b.part({
      attempts: b.int(0, 2, 10),
      perTryTimeout: b.dur('0s', true),
      retryOn: {
        type: 'array',
        uniqueItems: true,
        items: { type: 'string', enum: [...RETRY_ON] },
        ...b.d(['connect-failure', 'reset', 'timeout', 'gateway-error', '5xx']),
      },
      budgetPercent: b.percent(20),
      minRetryConcurrency: b.int(0, 10),
      bufferBodyUpTo: b.int(0, 65536),
    }),
    limits: b.part({ maxConcurrent: b.int(1, 1024), maxPending: b.int(0, 0), maxPendingWait: b.dur('1s') }),
  });
}

function healthCheckSchema(b: PolicySchemaBuilders): object {
  return b.part({
    enabled: { type: 'boolean', ...b.d(false) },
    path: { type: 'string', pattern: '^/', errorReason: 'must start with "/"', ...b.d('/') },
    interval: b.dur('5s'),
    timeout: b.dur('2s'),
    healthyThreshold: b.int(1, 2),
    unhealthyThreshold: b.int(1, 3),
    expectedStatuses: {
      type: 'array',
      minItems: 1,
      items: {
        type: ['integer', 'string'],
        format: 'status-range',
        minimum: 100,
        maximum: 599,
        errorReason: 'must be a status code (200) or an inclusive range ("200-399") within 100-599',
      },
      ...b.d(['200-399']),
    },
    jitter: b.dur('0s', true),
    jitterPercent: b.percent(10),
  });
}

/** `200` or `"200-399"` → [low, high]; undefined when it is neither or out of 100-599. */
export function parseStatusRange(value: number | string): [number, number] | undefined {
  const m = typeof value === 'number' ? [String(value), String(value), String(value)] : /^(\d{3})(?:-(\d{3}))?$/.exec(value.trim());
  if (!m) return undefined;
  const low = Number(m[1]);
  const high = Number(m[2] ?? m[1]);
  if (!Number.isInteger(low) || !(low >= 100 && high <= 599 && low <= high)) return undefined;
  return [low, high];
}

const routeRule = {
  type: 'object',
  additionalProperties: false,
  required: ['service'],
  properties: {
    host: { type: 'string', minLength: 1 },
    prefix: { type: 'string', pattern: '^/', errorReason: 'must start with "/"' },
    service: { type: 'string', minLength: 1 },
    strip: { type: 'boolean', default: false },
  },
  oneOf: [{ required: ['host'] }, { required: ['prefix'] }],
  errorReason: 'a route needs exactly one of "host" or "prefix"',
};

export const configSchema = {
  $id: 'switchboard-config',
  type: 'object',
  additionalProperties: false,
  properties: {
    logLevel: { type: 'string', enum: [...LOG_LEVELS], default: 'info' },
    domain: {
      type: 'string',
      pattern: '^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$',
      default: 'svc',
      errorReason: 'must be a DNS name like "svc" or "internal.example"',
    },
    dataDir: { type: 'string', minLength: 1, default: './data' },
    api: section({
      listen: listen('127.0.0.1:8500'),
      maxWait: duration('10m'),
      // No default: the registry advertises the address it bound.
      advertise: { type: 'string', format: 'listen', errorReason: LISTEN_REASON },
    }),
    registry: section({
      // etcd leases last whole seconds: how long a dead leader holds on before another leads.
      electionTtl: {
        type: ['string', 'integer'],
        format: 'lease-ttl',
        minimum: 1000,
        multipleOf: 1000,
        default: '3s',
        errorReason: 'must be a whole number of seconds, at least 1s (like "3s"), or that in milliseconds',
      },
    }),
    proxy: section({
      listen: listen('127.0.0.1:8080'),
      registry: { type: 'string', pattern: '^https?://', errorReason: 'must be an http:// or https:// URL' },
      pathRouting: { type: 'boolean', default: true },
      stripServicePrefix: { type: 'boolean', default: true },
      routes: { type: 'array', items: routeRule, default: [] },
      timeouts: section({
        connect: duration('5s'),
        response: duration('60s'),
        idle: duration('60s'),
      }),
      drain: duration('10s', { allowZero: true }),
      resyncInterval: duration('30s'),
      // One data-plane process per core by default (the `proxy` role; `all` runs one process).
      workers: { type: 'integer', minimum: 1, maximum: 1024, default: availableParallelism() },
      clientTimeouts: section({
        header: duration('10s'),
        request: duration('60s', { allowZero: true }),
      }),
      // More request header lines than this → 431 (Envoy's max_headers_count default is 100).
      maxRequestHeaders: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
      // Peers whose X-Forwarded-* / Forwarded are believed (Envoy's xff_num_trusted_hops, by address).
      trustedProxies: {
        type: 'array',
        default: [],
        items: { type: 'string', format: 'cidr', errorReason: 'must be an IP address or CIDR, like "10.0.0.0/8" or "::1/128"' },
      },
      defaults: servicePolicy(true),
      services: {
        type: 'object',
        default: {},
        propertyNames: { minLength: 1 },
        additionalProperties: servicePolicy(false),
      },
    }),
    admin: section({ listen: listen('127.0.0.1:9901') }),
    store: section({
      kind: { type: 'string', enum: ['embedded', 'etcd'], default: 'embedded' },
      compactEvery: { type: 'integer', minimum: 1, default: 10000 },
      etcd: section({
        endpoints: {
          type: 'array',
          minItems: 1,
          items: { type: 'string', minLength: 1 },
          default: ['127.0.0.1:2379'],
        },
        prefix: { type: 'string', default: 'switchboard/' },
      }),
    }),
    bus: section({
      kind: { type: 'string', enum: ['local', 'redis'], default: 'local' },
      redis: section({
        url: {
          type: 'string',
          pattern: '^rediss?(\\+(sentinel|cluster))?://',
          default: 'redis://127.0.0.1:6379',
          errorReason: 'must be a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL',
        },
        channel: { type: 'string', minLength: 1, default: 'switchboard:catalog' },
      }),
    }),
    // `switchboard register`: the one instance a sidecar registers and heartbeats.
    register: section({
      service: { type: 'string', minLength: 1 },
      id: { type: 'string', minLength: 1 },
      address: { type: 'string', minLength: 1, default: '127.0.0.1' },
      port: { type: 'integer', minimum: 1, maximum: 65535 },
      tags: { type: 'array', items: { type: 'string' }, default: [] },
      ttl: duration('10s'),
      deregisterAfter: duration('1m', { allowZero: true }),
    }),
  },
} as const;

function createAjv(): Ajv {
  const ajv = new Ajv({ allErrors: false, useDefaults: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true });
  ajv.addKeyword({ keyword: 'errorReason', schemaType: 'string' });
  ajv.addFormat('duration', { type: 'string', validate: (s) => parseDuration(s) !== undefined });
  ajv.addFormat('positive-duration', { type: 'string', validate: (s) => (parseDuration(s) ?? 0) > 0 });
  ajv.addFormat('lease-ttl', { type: 'string', validate: (s) => isLeaseTtl(parseDuration(s)) });
  ajv.addFormat('listen', { type: 'string', validate: (s) => parseListen(s) !== undefined });
  ajv.addFormat('cidr', { type: 'string', validate: isCidr });
  ajv.addFormat('status-range', { type: 'string', validate: (s) => parseStatusRange(s) !== undefined });
  return ajv;
}

function isCidr(value: string): boolean {
  const [address, bits, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  const max = family === 6 ? 128 : 32;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= max;
}

function isLeaseTtl(ms: number | undefined): boolean {
  return ms !== undefined && ms >= 1000 && ms % 1000 === 0;
}

let compiled: ValidateFunction | undefined;

/** Validates in place: fills defaults into `value`. Returns the first problem, if any. */
export function validateConfig(value: unknown): ConfigProblem | undefined {
  compiled ??= createAjv().compile(configSchema);
  if (compiled(value)) return undefined;
  return describeError(firstRelevantError(compiled.errors ?? []));
}

/** Errors from inside a oneOf branch ("host is required") mislead; the oneOf's own error says it. */
function firstRelevantError(errors: ErrorObject[]): ErrorObject | undefined {
  return errors.find((e) => !/\/(oneOf|anyOf)\/\d+\//.test(e.schemaPath)) ?? errors[0];
}

export interface ConfigProblem {
  /** Dotted field path as the file spells it, e.g. `proxy.timeouts.connect`. */
  path: string;
  reason: string;
}

function describeError(error: ErrorObject | undefined): ConfigProblem {
  if (!error) return { path: '(root)', reason: 'is invalid' };
  const segments = error.instancePath.split('/').slice(1).map(unescapePointer);
  if (error.keyword === 'additionalProperties') {
    segments.push(String(error.params.additionalProperty));
    return { path: fieldPath(segments), reason: 'unknown field (check the spelling)' };
  }
  if (error.keyword === 'required') {
    segments.push(String(error.params.missingProperty));
    return { path: fieldPath(segments), reason: 'is required' };
  }
  const parent = error.parentSchema as { errorReason?: string } | undefined;
  const reason = parent?.errorReason ?? ajvReason(error);
  return { path: fieldPath(segments), reason: `${reason}, got ${JSON.stringify(error.data)}` };
}

function ajvReason(error: ErrorObject): string {
  if (error.keyword === 'enum') return `must be one of ${(error.params.allowedValues as unknown[]).join(', ')}`;
  return error.message ?? 'is invalid';
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** `['proxy', 'routes', '0', 'prefix']` → `proxy.routes[0].prefix`. */
function fieldPath(segments: string[]): string {
  if (segments.length === 0) return '(root)';
  return segments.reduce((path, s) => (/^\d+$/.test(s) ? `${path}[${s}]` : path ? `${path}.${s}` : s), '');
}
