import { isIP } from 'node:net';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { DataValidationCxt } from 'ajv/dist/types';
import { parseDuration } from './duration';
import { ConfigSchema, MAX_DURATION_MS, parseListen, parseStatusRange } from './schema';

/**
 * Ajv over the schema (schema.ts): fills defaults (`useDefaults`), coerces the text of
 * environment variables and flags (`coerceTypes`), and turns durations into milliseconds and
 * status ranges into [low, high] pairs as it validates (modifying keywords). The value it
 * validated is the runtime configuration.
 */

export interface ConfigProblem {
  /** Dotted field path as the file spells it, e.g. `proxy.timeouts.connect`. */
  path: string;
  reason: string;
}

type DurationKind = 'positive' | 'non-negative' | 'whole-seconds';

function durationMs(data: unknown): number | undefined {
  if (typeof data === 'number') return data;
  if (typeof data !== 'string') return undefined;
  const text = data.trim();
  return /^\d+$/.test(text) ? Number(text) : parseDuration(text);
}

function acceptsDuration(kind: DurationKind, ms: number | undefined): ms is number {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0 || ms > MAX_DURATION_MS) return false;
  if (kind === 'positive') return ms > 0;
  if (kind === 'whole-seconds') return ms >= 1000 && ms % 1000 === 0;
  return true;
}

/** Replaces the value being validated (Ajv's modifying keywords). */
function replace(ctx: DataValidationCxt | undefined, value: unknown): void {
  if (ctx !== undefined) (ctx.parentData as Record<string | number, unknown>)[ctx.parentDataProperty] = value;
}

function isCidr(value: string): boolean {
  const [address, bits, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32);
}

function createAjv(): Ajv {
  // No code optimisation pass: it took half the compile (~170 of 290 ms of every start) for a
  // validator that runs at start and at reload only.
  const ajv = new Ajv({ allErrors: false, useDefaults: true, coerceTypes: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true, code: { optimize: false } });
  for (const keyword of ['errorReason', 'defaultText', 'example']) ajv.addKeyword({ keyword, schemaType: 'string' });
  ajv.addKeyword({ keyword: 'cli', schemaType: 'object' });
  ajv.addKeyword({
    keyword: 'duration',
    schemaType: 'string',
    modifying: true,
    errors: false,
    validate: (kind: DurationKind, data: unknown, _schema: unknown, ctx?: DataValidationCxt) => {
      const ms = durationMs(data);
      if (!acceptsDuration(kind, ms)) return false;
      replace(ctx, ms);
      return true;
    },
  });
  ajv.addKeyword({
    keyword: 'statusRange',
    schemaType: 'boolean',
    modifying: true,
    errors: false,
    validate: (_on: boolean, data: unknown, _schema: unknown, ctx?: DataValidationCxt) => {
      const range = typeof data === 'number' || typeof data === 'string' ? parseStatusRange(data) : undefined;
      if (range === undefined) return false;
      replace(ctx, range);
      return true;
    },
  });
  ajv.addFormat('listen', { type: 'string', validate: (s) => parseListen(s) !== undefined });
  ajv.addFormat('cidr', { type: 'string', validate: isCidr });
  return ajv;
}

let compiled: ValidateFunction | undefined;

/**
 * Validates in place: fills defaults, coerces, converts durations and status ranges. Returns
 * the first problem, if any. Validate a value once: a converted value is not input any more.
 */
export function validateConfig(value: unknown): ConfigProblem | undefined {
  compiled ??= createAjv().compile(ConfigSchema);
  if (compiled(value)) return undefined;
  return describeError(firstRelevantError(compiled.errors ?? []));
}

/** Errors from inside a oneOf/anyOf branch ("host is required") mislead; the node's own error says it. */
function firstRelevantError(errors: ErrorObject[]): ErrorObject | undefined {
  return errors.find((e) => !/\/(oneOf|anyOf)\/\d+\//.test(e.schemaPath)) ?? errors[0];
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
