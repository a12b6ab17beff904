import type { HealthStatus } from '../../catalog/model';
import { parseDuration } from '../../config/duration';
import { isIP } from 'node:net';
import { badRequest } from '../../errors';
import { parsePrefixTag } from '../../proxy/router';
import type { TargetPolicy } from '../targets';
import type { CheckSpec, RegistrationSpec } from '../catalog-writer';

/**
 * Request validation. The JSON schemas (checked by fastify before a handler runs) own the
 * shapes and ranges; the parse functions below add what a schema can't say (Go durations,
 * one check type per check, URLs) and apply Consul's defaults. Every rejection names the
 * offending field, and happens before anything is written.
 */

/** Go duration text ("10s", "1m30s") or, as Consul also accepts, nanoseconds. */
const DURATION = { type: ['string', 'number'] };

/** Printable ASCII without "/" (it would break the /deregister/:id path), at most 128. */
const ID_PATTERN = '^[\\x20-\\x2e\\x30-\\x7e]{1,128}$';

/** Checks one instance may have: each runs on the leader, so they are bounded. */
const MAX_CHECKS = 8;
/** A probing check runs at least once a day (and at most every registry.minCheckInterval). */
const MAX_INTERVAL_MS = 24 * 3_600_000;

/** A script check's program and arguments: strings, never a shell line. */
const SCRIPT_ARGS = { type: ['array', 'null'], items: { type: 'string', minLength: 1, maxLength: 4096 }, maxItems: 64 } as const;

const CHECK_SCHEMA = {
  type: ['object', 'null'],
  properties: {
    CheckID: { type: 'string', pattern: ID_PATTERN },
    ID: { type: 'string', pattern: ID_PATTERN },
    Name: { type: 'string', maxLength: 256 },
    Notes: { type: 'string', maxLength: 4096 },
    Status: { enum: ['passing', 'warning', 'critical', ''] },
    TTL: DURATION,
    HTTP: { type: 'string', maxLength: 2048 },
    TCP: { type: 'string', maxLength: 512 },
    Args: SCRIPT_ARGS,
    ScriptArgs: SCRIPT_ARGS,
    Interval: DURATION,
    Timeout: DURATION,
    Method: { type: 'string', pattern: '^[A-Za-z]*$', maxLength: 16 },
    Header: { type: ['object', 'null'], additionalProperties: { type: 'array', items: { type: 'string' } } },
    DeregisterCriticalServiceAfter: DURATION,
  },
} as const;

/** PUT /v1/agent/check/register: one check definition, on a service instance. */
export const CHECK_REGISTER_SCHEMA = {
  type: 'object',
  required: ['Name'],
  properties: { ...CHECK_SCHEMA.properties, ServiceID: { type: 'string', pattern: ID_PATTERN } },
} as const;

export const REGISTER_SCHEMA = {
  type: 'object',
  required: ['Name'],
  properties: {
    ID: { type: 'string', pattern: ID_PATTERN },
    Name: { type: 'string', minLength: 1, maxLength: 63 },
    Tags: { type: ['array', 'null'], items: { type: 'string', maxLength: 255 }, maxItems: 64 },
    Address: { type: 'string', maxLength: 253 },
    Port: { type: 'integer', minimum: 1, maximum: 65535 },
    // Consul's limits: 64 pairs, keys [A-Za-z0-9_-]{1,128}, values ≤ 512 characters.
    Meta: {
      type: ['object', 'null'],
      maxProperties: 64,
      propertyNames: { pattern: '^[A-Za-z0-9_-]{1,128}$' },
      additionalProperties: { type: 'string', maxLength: 512 },
    },
    Weights: {
      type: ['object', 'null'],
      required: ['Passing'],
      properties: { Passing: { type: 'integer', minimum: 1, maximum: 65535 }, Warning: { type: 'integer', minimum: 0, maximum: 65535 } },
    },
    Check: CHECK_SCHEMA,
    Checks: { type: ['array', 'null'], items: CHECK_SCHEMA, maxItems: MAX_CHECKS },
    EnableTagOverride: { type: 'boolean' },
  },
} as const;

export const CHECK_UPDATE_SCHEMA = {
  type: 'object',
  required: ['Status'],
  properties: { Status: { enum: ['passing', 'warning', 'critical'] }, Output: { type: 'string' } },
} as const;

/** Consul keeps at most 4 KiB of check output. */
export const MAX_OUTPUT = 4096;

/** A check of /v1/catalog/register: its status is set by the registrant, its Definition not run here. */
const CATALOG_CHECK_SCHEMA = {
  type: 'object',
  properties: {
    CheckID: { type: 'string', pattern: ID_PATTERN },
    Name: { type: 'string', maxLength: 256 },
    Status: { enum: ['passing', 'warning', 'critical'] },
    Notes: { type: 'string', maxLength: MAX_OUTPUT },
    Output: { type: 'string' },
    ServiceID: { type: 'string', pattern: ID_PATTERN },
  },
} as const;

/** PUT /v1/catalog/register: a node (accepted, not kept: every instance is on ours) and its service. */
export const CATALOG_REGISTER_SCHEMA = {
  type: 'object',
  required: ['Node'],
  properties: {
    Node: { type: 'string', minLength: 1, maxLength: 256 },
    Address: { type: 'string', maxLength: 253 },
    Datacenter: { type: 'string' },
    Service: {
      type: ['object', 'null'],
      required: ['Service'],
      properties: {
        ID: REGISTER_SCHEMA.properties.ID,
        Service: REGISTER_SCHEMA.properties.Name,
        Tags: REGISTER_SCHEMA.properties.Tags,
        Address: REGISTER_SCHEMA.properties.Address,
        Port: REGISTER_SCHEMA.properties.Port,
        Meta: REGISTER_SCHEMA.properties.Meta,
        Weights: REGISTER_SCHEMA.properties.Weights,
      },
    },
    Check: { anyOf: [CATALOG_CHECK_SCHEMA, { type: 'null' }] },
    Checks: { type: ['array', 'null'], items: CATALOG_CHECK_SCHEMA, maxItems: MAX_CHECKS },
  },
} as const;

export const CATALOG_DEREGISTER_SCHEMA = {
  type: 'object',
  required: ['Node'],
  properties: {
    Node: { type: 'string', minLength: 1, maxLength: 256 },
    Datacenter: { type: 'string' },
    ServiceID: { type: 'string', pattern: ID_PATTERN },
    CheckID: { type: 'string', pattern: ID_PATTERN },
  },
} as const;

interface CatalogCheckBody {
  CheckID?: string;
  Name?: string;
  Status?: HealthStatus;
  Notes?: string;
  Output?: string;
  ServiceID?: string;
}

/**
 * PUT /v1/catalog/register → the registration of its service (undefined for a node alone).
 * The service's address defaults to the node's Address; its checks are `external`: kept
 * with the Status the registrant gives, never run or expired here. Checks naming another
 * ServiceID (node checks) are not kept.
 */
export function parseCatalogRegistration(body: unknown, context: RegistrationContext): RegistrationSpec | undefined {
  const b = body as { Address?: string; Service?: Record<string, unknown> | null; Check?: CatalogCheckBody | null; Checks?: CatalogCheckBody[] | null };
  if (b.Service === undefined || b.Service === null) return undefined;
  const s = b.Service;
  const spec = parseRegistration({ ID: s.ID, Name: s.Service, Tags: s.Tags, Address: s.Address || b.Address, Port: s.Port, Meta: s.Meta, Weights: s.Weights }, context);
  const checks = [...(b.Check ? [b.Check] : []), ...(b.Checks ?? [])].filter((c) => c.ServiceID === undefined || c.ServiceID === spec.id);
  spec.checks = checks.map((c, i) => ({
    checkId: c.CheckID || `service:${spec.id}${i === 0 ? '' : `:${i + 1}`}`,
    name: c.Name || `Service '${spec.service}' check`,
    type: 'external' as const,
    status: c.Status ?? 'critical',
    output: (c.Output ?? '').slice(0, MAX_OUTPUT),
    ...(c.Notes ? { notes: c.Notes } : {}),
  }));
  return spec;
}

/** Schema-validated register body (after canonicalRegistration). */
interface RegisterBody {
  ID?: string;
  Name: string;
  Tags?: string[] | null;
  Address?: string;
  Port?: number;
  Meta?: Record<string, string> | null;
  Weights?: { Passing: number; Warning?: number } | null;
  Check?: CheckBody | null;
  Checks?: (CheckBody | null)[] | null;
}

type CheckBody = Record<string, unknown>;

const UNSUPPORTED_CHECK_KINDS = ['GRPC', 'Script', 'DockerContainerID', 'UDP', 'H2PING', 'AliasNode', 'AliasService', 'OSService'];
const DEFAULT_CHECK_TIMEOUT_MS = 10_000;

export interface RegistrationContext {
  remoteAddress: string;
  replaceExistingChecks: boolean;
  /** Where the instance and its checks may point. */
  targets: TargetPolicy;
  /** The proxy's Host suffix: `<service>.<domain>` belongs to that service alone. */
  domain: string;
  /** registry.minCheckInterval. */
  minCheckIntervalMs: number;
  /** registry.enableScriptChecks: whether `Args` is accepted at all (who may use it is the route's call). */
  scriptChecks: boolean;
}

export function parseRegistration(body: unknown, context: RegistrationContext): RegistrationSpec {
  const b = body as RegisterBody;
  const service = serviceName(b.Name, 'Name');
  const id = b.ID || service;
  // No Address means "this service's host" in Consul (the agent's node); for us the host
  // that registered it, which is what a sidecar or the service itself is.
  const address = b.Address || context.remoteAddress;
  if (b.Address && !isAddress(b.Address)) throw badRequest('Address', `must be an IP address or a host name, got ${JSON.stringify(b.Address)}`);
  const port = b.Port ?? 0;
  if (port > 0) refuseTarget(context.targets, address, port, b.Address ? 'Address' : 'Port');
  const tags = b.Tags ?? [];
  tags.forEach((tag, i) => checkPrefixClaim(tag, service, context.domain, `Tags[${i}]`));
  const meta = { ...(b.Meta ?? {}) };
  for (const key of Object.keys(meta)) if (key.startsWith('consul-')) throw badRequest(`Meta.${key}`, 'the consul- prefix is reserved');
  return {
    id,
    service,
    address,
    port,
    tags,
    meta,
    weights: b.Weights ? { passing: b.Weights.Passing, warning: b.Weights.Warning ?? 0 } : { passing: 1, warning: 1 },
    checks: parseChecks(b, id, context),
    replaceExistingChecks: context.replaceExistingChecks,
  };
}

/**
 * PUT /v1/agent/check/register. Checks belong to service instances here (there are no node
 * checks), so ServiceID is required; the check ID defaults to its Name, as in Consul.
 */
export function parseCheckRegistration(body: unknown, context: RegistrationContext): { serviceId: string; check: CheckSpec } {
  const b = body as CheckBody & { Name: string; ServiceID?: string };
  if (!b.ServiceID) throw badRequest('ServiceID', 'required: a check belongs to a registered service instance here (there are no node-level checks)');
  return { serviceId: b.ServiceID, check: parseCheck(b, '', b.Name, b.Name, context) };
}

/**
 * A service name as the router and DNS use it: a DNS label, in lower case. Names that differ
 * only in case are one service, so `USERS` cannot shadow `users` (the router matches Host
 * case-insensitively).
 */
export function serviceName(name: string, field: string): string {
  const lower = name.toLowerCase();
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(lower)) {
    throw badRequest(field, `must be a DNS label: letters, digits and "-", 1 to 63 characters, not starting or ending with "-"; got ${JSON.stringify(name.slice(0, 80))}`);
  }
  return lower;
}

function isAddress(text: string): boolean {
  if (isIP(text) !== 0) return true;
  return /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(text);
}

function refuseTarget(targets: TargetPolicy, host: string, port: number, field: string): void {
  const refusal = targets.refusal(host, port);
  if (refusal !== undefined) throw badRequest(field, `may not point there: ${refusal}`);
}

/**
 * A `urlprefix-` tag may not claim every path (`/`), nor another service's own Host
 * (`<other>.<domain>`): that would take that service's traffic.
 */
function checkPrefixClaim(tag: string, service: string, domain: string, field: string): void {
  const rule = parsePrefixTag(tag);
  if (rule === undefined) return;
  if (rule.prefix === '/') throw badRequest(field, `${JSON.stringify(tag)} would claim every path; claim a prefix of your own`);
  const suffix = `.${domain.toLowerCase()}`;
  if (rule.host.endsWith(suffix) && rule.host.slice(0, -suffix.length) !== service) {
    throw badRequest(field, `${JSON.stringify(tag)} claims another service's host ${rule.host}`);
  }
}

function parseChecks(b: RegisterBody, serviceId: string, context: RegistrationContext): CheckSpec[] {
  const defs: { def: CheckBody; field: string }[] = [];
  if (b.Check && !isEmpty(b.Check)) defs.push({ def: b.Check, field: 'Check.' });
  (b.Checks ?? []).forEach((def, i) => {
    if (def && !isEmpty(def)) defs.push({ def, field: `Checks[${i}].` });
  });
  if (defs.length > MAX_CHECKS) throw badRequest('Checks', `at most ${MAX_CHECKS} checks per instance`);
  // Consul numbers default IDs only when the service has more than one check.
  const specs = defs.map(({ def, field }, i) =>
    parseCheck(def, field, defs.length > 1 ? `service:${serviceId}:${i + 1}` : `service:${serviceId}`, `Service '${b.Name}' check`, context),
  );
  const seen = new Set<string>();
  specs.forEach((spec, i) => {
    if (seen.has(spec.checkId)) throw badRequest(`${defs[i].field}CheckID`, `duplicate check ID "${spec.checkId}"`);
    seen.add(spec.checkId);
  });
  return specs;
}

function isEmpty(def: CheckBody): boolean {
  return Object.values(def).every((v) => v === undefined || v === null || v === '');
}

/** `field`: the path prefix of the check's fields in error messages ("Check.", "Checks[1].", or "" for a bare check body). */
function parseCheck(def: CheckBody, field: string, defaultId: string, defaultName: string, context: RegistrationContext): CheckSpec {
  const { targets } = context;
  const present = (key: string) => def[key] !== undefined && def[key] !== null && def[key] !== '';
  const unsupported = UNSUPPORTED_CHECK_KINDS.find(present);
  if (unsupported) throw badRequest(`${field}${unsupported}`, `check type not supported; use TTL, HTTP, TCP or Args${unsupported === 'Script' ? ' (a program and its arguments, run without a shell)' : ''}`);
  // ScriptArgs is Consul's older name for Args.
  if (!present('Args') && present('ScriptArgs')) def = { ...def, Args: def.ScriptArgs };
  const kinds = (['TTL', 'HTTP', 'TCP', 'Args'] as const).filter((k) => present(k) && !(k === 'Args' && (def.Args as unknown[]).length === 0));
  if (kinds.length === 0) throw badRequest(field.replace(/\.$/, '') || 'Name', 'a check needs one of TTL, HTTP, TCP or Args');
  if (kinds.length > 1) throw badRequest(`${field}${kinds[1]}`, `a check has one type; ${kinds[0]} is already set`);
  const base = {
    checkId: (def.CheckID as string | undefined) || (def.ID as string | undefined) || defaultId,
    name: (def.Name as string | undefined) || defaultName,
    status: (def.Status as HealthStatus | '' | undefined) || undefined,
    notes: (def.Notes as string | undefined) || undefined,
    deregisterCriticalAfterMs: optionalDuration(def, field, 'DeregisterCriticalServiceAfter'),
  };
  if (kinds[0] === 'TTL') return { ...base, type: 'ttl', ttlMs: requiredDuration(def, field, 'TTL') };
  if (kinds[0] === 'Args' && !context.scriptChecks) {
    throw badRequest(`${field}Args`, 'script checks are disabled on this registry: start it with --enable-script-checks=true (registry.enableScriptChecks)');
  }
  const intervalMs = requiredDuration(def, field, 'Interval');
  if (intervalMs < context.minCheckIntervalMs || intervalMs > MAX_INTERVAL_MS) {
    throw badRequest(`${field}Interval`, `must be from ${context.minCheckIntervalMs} ms (registry.minCheckInterval) to 24h`);
  }
  const timeoutMs = Math.min(optionalDuration(def, field, 'Timeout') ?? DEFAULT_CHECK_TIMEOUT_MS, intervalMs);
  if (def.Timeout !== undefined && def.Timeout !== null && def.Timeout !== '' && (optionalDuration(def, field, 'Timeout') ?? 0) > intervalMs) {
    throw badRequest(`${field}Timeout`, 'must not be longer than Interval');
  }
  const probe = { ...base, intervalMs, timeoutMs };
  if (kinds[0] === 'TCP') return { ...probe, type: 'tcp', tcp: parseHostPort(def.TCP as string, `${field}TCP`, targets) };
  if (kinds[0] === 'Args') return { ...probe, type: 'script', args: [...(def.Args as string[])] };
  return {
    ...probe,
    type: 'http',
    http: parseHttpUrl(def.HTTP as string, `${field}HTTP`, targets),
    method: ((def.Method as string | undefined) || 'GET').toUpperCase(),
    ...(def.Header ? { header: def.Header as Record<string, string[]> } : {}),
  };
}

function requiredDuration(def: CheckBody, field: string, key: string): number {
  const ms = optionalDuration(def, field, key);
  if (ms === undefined) throw badRequest(`${field}${key}`, 'required for this check type: a positive duration like "10s"');
  return ms;
}

/** A positive duration in ms; absent, empty or zero mean "not set" (Consul). */
function optionalDuration(def: CheckBody, field: string, key: string): number | undefined {
  const value = def[key];
  if (value === undefined || value === null || value === '') return undefined;
  const ms = typeof value === 'number' ? value / 1e6 : parseDuration(String(value));
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) {
    throw badRequest(`${field}${key}`, `not a duration: ${JSON.stringify(value)} (use e.g. "10s", "1m30s")`);
  }
  return ms === 0 ? undefined : ms;
}

function parseHttpUrl(text: string, field: string, targets: TargetPolicy): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw badRequest(field, `not a URL: ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw badRequest(field, 'must be an http:// or https:// URL');
  if (url.username !== '' || url.password !== '') throw badRequest(field, 'may not carry credentials');
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  refuseTarget(targets, url.hostname, port, field);
  return text;
}

function parseHostPort(text: string, field: string, targets: TargetPolicy): string {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw badRequest(field, `not host:port: ${JSON.stringify(text)}`);
  refuseTarget(targets, m[1], Number(m[2]), field);
  return text;
}

/** Consul's boolean query flags: present without a value means true (`?passing`). */
export function parseFlag(value: unknown, field: string): boolean {
  if (value === undefined) return false;
  if (value === '' || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw badRequest(field, 'must be true or false');
}

/** A single optional string query parameter. */
export function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  throw badRequest(field, 'must be given once');
}

/** A non-negative integer query parameter (indexes, revisions). */
export function parseRevision(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw badRequest(field, 'must be a non-negative integer');
  }
  return Number(value);
}

/** Query strings may repeat a key (`?tag=a&tag=b`): every value, all must match (Consul). */
export function stringList(value: unknown, field: string): string[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  if (!list.every((v) => typeof v === 'string')) throw badRequest(field, 'must be a string');
  return list as string[];
}

/** ajv's instancePath (`/Checks/1/Interval`) as our field path (`Checks[1].Interval`). */
export function fieldFromSchemaError(error: { instancePath: string; params?: Record<string, unknown>; propertyName?: string }): string {
  const segments = error.instancePath
    .split('/')
    .filter((s) => s.length > 0)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const missing = error.params?.missingProperty;
  if (typeof missing === 'string') segments.push(missing);
  // A key that fails `propertyNames` is named beside the error, not in its path.
  const propertyName = error.propertyName ?? error.params?.propertyName;
  if (typeof propertyName === 'string') segments.push(propertyName);
  if (segments.length === 0) return 'body';
  return segments.reduce((path, s) => (/^\d+$/.test(s) ? `${path}[${s}]` : path ? `${path}.${s}` : s), '');
}
