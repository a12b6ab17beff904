import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SwitchboardError, badRequest } from '../../errors';
import type { KvEntry } from '../kv/kv-table';
import { permissionDenied } from './acl';
import { awaitVisible, parseBlockingQuery, setConsulHeaders, withCancellation } from './blocking';
import type { ApiContext } from './context';
import { optionalString, parseFlag, parseRevision } from './validation';

/**
 * /v1/kv/<key>: Consul's KV store (what Spring Cloud Consul Config, consul-template's
 * `key`/`tree` and fabio's KV configuration read). Values are raw bytes — the body of a PUT
 * whatever its Content-Type, never parsed as JSON — up to 512 KiB (Consul's kv_max_value_size);
 * reads give them base64 in `Value`, or raw with `?raw`. Blocking queries on a key or a prefix,
 * `?cas=` check-and-set, `?flags=`, ACL `key`/`key_prefix` rules. Sessions (`?acquire`,
 * `?release`) are not implemented: 501.
 */

/** Consul's kv_max_value_size. */
export const MAX_VALUE_BYTES = 512 * 1024;
const MAX_KEY_LENGTH = 2048;

type KeyParams = { Params: { '*': string } };

export function kvRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<KeyParams>('/v1/kv/*', (request, reply) => read(ctx, request, reply));

  // The body arrives as bytes (json-body.ts parses JSON only on routes that take it): the value.
  app.put<KeyParams>('/v1/kv/*', { bodyLimit: MAX_VALUE_BYTES }, async (request, reply) => {
    const key = keyOf(request, true);
    const query = request.query as Record<string, unknown>;
    refuseSessions(query);
    requireKeyWrite(request, key);
    const flags = parseFlags(query.flags);
    const cas = parseRevision(query.cas, 'cas');
    const value = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const result = await ctx.kvWriter.put(key, value, flags, cas);
    if (result.ok) await awaitVisible(ctx, result.rev);
    return sendBoolean(reply, result.ok);
  });

  app.delete<KeyParams>('/v1/kv/*', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const recurse = parseFlag(query.recurse, 'recurse');
    const key = keyOf(request, !recurse);
    const cas = parseRevision(query.cas, 'cas');
    if (recurse && cas !== undefined) throw badRequest('cas', 'cannot be combined with recurse');
    if (recurse) for (const entry of ctx.view.kv.list(key)) requireKeyWrite(request, entry.key);
    else requireKeyWrite(request, key);
    const result = await ctx.kvWriter.delete(key, { recurse, cas });
    if (result.ok) await awaitVisible(ctx, result.rev);
    return sendBoolean(reply, result.ok);
  });
}

async function read(ctx: ApiContext, request: FastifyRequest<KeyParams>, reply: FastifyReply): Promise<unknown> {
  const query = request.query as Record<string, unknown>;
  const recurse = parseFlag(query.recurse, 'recurse');
  const keysOnly = query.keys !== undefined && parseFlag(query.keys, 'keys');
  const raw = parseFlag(query.raw, 'raw');
  const separator = optionalString(query.separator, 'separator') ?? '';
  const key = keyOf(request, !(recurse || keysOnly));
  const prefix = recurse || keysOnly;
  const { index, waitMs } = parseBlockingQuery(query, ctx.maxWaitMs);
  const table = ctx.view.kv;
  if (index > 0) {
    const jitter = Math.floor(Math.random() * (waitMs / 16));
    await withCancellation(reply, ctx.shutdown, (signal) => table.waitForChange(key, prefix, index, waitMs + jitter, signal));
  }
  setConsulHeaders(ctx, reply, table.index(key, prefix));

  if (keysOnly) {
    const keys = readableKeys(request, reply, table.list(key)).map((e) => e.key);
    const listed = separator === '' ? keys : collapse(keys, key, separator);
    if (listed.length === 0) return notFound(reply);
    return listed;
  }
  if (recurse) {
    const entries = readableKeys(request, reply, table.list(key));
    if (entries.length === 0) return notFound(reply);
    return entries.map(consulEntry);
  }
  if (!request.authorizer.keyRead(key)) throw permissionDenied(`key:read on "${key}"`);
  const entry = table.get(key);
  if (entry === undefined) return notFound(reply);
  if (raw) {
    reply.type('application/octet-stream');
    return reply.send(Buffer.from(entry.value, 'base64'));
  }
  return [consulEntry(entry)];
}

/** Consul's KV entry; `Value` null for an empty value, as Consul answers. */
function consulEntry(entry: KvEntry): Record<string, unknown> {
  return {
    LockIndex: 0,
    Key: entry.key,
    Flags: Number(entry.flags),
    Value: entry.value === '' ? null : entry.value,
    CreateIndex: entry.createIndex,
    ModifyIndex: entry.modifyIndex,
  };
}

/** `?keys&separator=/`: keys below the prefix up to the next separator (inclusive), once each. */
function collapse(keys: readonly string[], prefix: string, separator: string): string[] {
  const out: string[] = [];
  for (const key of keys) {
    const at = key.indexOf(separator, prefix.length);
    const listed = at < 0 ? key : key.slice(0, at + separator.length);
    if (out[out.length - 1] !== listed) out.push(listed);
  }
  return out;
}

function readableKeys(request: FastifyRequest, reply: FastifyReply, entries: KvEntry[]): KvEntry[] {
  const kept = entries.filter((e) => request.authorizer.keyRead(e.key));
  if (kept.length !== entries.length) reply.header('x-consul-results-filtered-by-acls', 'true');
  return kept;
}

/** The key from the path; required for a single-key read or write ("" is the root for prefixes). */
function keyOf(request: FastifyRequest<KeyParams>, required: boolean): string {
  const key = request.params['*'] ?? '';
  if (required && key === '') throw badRequest('key', 'missing key name');
  if (key.length > MAX_KEY_LENGTH) throw badRequest('key', `longer than ${MAX_KEY_LENGTH} characters`);
  if (key.includes('\u0000')) throw badRequest('key', 'contains a NUL character');
  return key;
}

function requireKeyWrite(request: FastifyRequest, key: string): void {
  if (!request.authorizer.keyWrite(key)) throw permissionDenied(`key:write on "${key}"`);
}

/** Consul's Flags: an unsigned 64-bit number, kept as its decimal text. */
function parseFlags(value: unknown): string {
  const text = optionalString(value, 'flags');
  if (text === undefined) return '0';
  if (!/^\d{1,20}$/.test(text) || BigInt(text) > 0xffffffffffffffffn) throw badRequest('flags', 'must be an unsigned 64-bit integer');
  return BigInt(text).toString();
}

function refuseSessions(query: Record<string, unknown>): void {
  for (const field of ['acquire', 'release']) {
    if (query[field] !== undefined) throw new SwitchboardError('not_implemented', `?${field}: sessions are not implemented`, { field });
  }
}

function sendBoolean(reply: FastifyReply, value: boolean): FastifyReply {
  reply.type('application/json; charset=utf-8');
  return reply.send(value ? 'true' : 'false');
}

/** Consul answers a missing key 404 with an empty body (and the X-Consul-* headers). */
function notFound(reply: FastifyReply): FastifyReply {
  return reply.status(404).send('');
}
