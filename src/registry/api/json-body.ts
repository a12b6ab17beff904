import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { SwitchboardError, badRequest } from '../../errors';

/**
 * Request bodies: read as bytes for every route, parsed as JSON only on the routes that take
 * JSON — those with a body schema, or `config: { jsonBody: true }` — so a PUT whose body is
 * not JSON reaches a route that does not care (a heartbeat, a KV value) instead of a 400.
 *
 * Consul reads any body as JSON whatever its Content-Type (its own docs use
 * `curl --data @payload.json`, which says form-urlencoded), and an empty body is no body.
 * Stricter than JSON itself, because these strings become routes, DNS names and log lines:
 * invalid UTF-8 is refused (not turned into U+FFFD), as are CR, LF and NUL in any string but
 * free text (check Output and Notes, ACL Rules and Description), and `__proto__` / `constructor`
 * keys (refused, not dropped, so the client learns its object was not what we stored).
 */
export function acceptJsonBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, raw, done) => done(null, raw));
  app.addHook('onRoute', (route: RouteOptions) => {
    const takesJson = (route.schema as { body?: unknown } | undefined)?.body !== undefined || (route.config as { jsonBody?: boolean } | undefined)?.jsonBody === true;
    if (!takesJson) return;
    const existing = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    // First, so that the route's own preValidation (canonical key names) sees the object.
    route.preValidation = [parseJsonBody, ...existing] as RouteOptions['preValidation'];
  });
}

async function parseJsonBody(request: FastifyRequest): Promise<void> {
  request.body = parseJson(request.body);
}

function parseJson(raw: unknown): unknown {
  if (!Buffer.isBuffer(raw)) return raw;
  let source: string;
  try {
    source = UTF8.decode(raw);
  } catch {
    throw badRequest('body', 'not valid UTF-8');
  }
  if (source.trim() === '') return undefined;
  try {
    return JSON.parse(source, strictValue);
  } catch (err) {
    throw err instanceof SwitchboardError ? err : badRequest('body', `invalid JSON: ${(err as Error).message}`);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const FREE_TEXT = new Set(['Output', 'Notes', 'Rules', 'Description']);

function strictValue(key: string, value: unknown): unknown {
  if (key === '__proto__' || key === 'constructor') throw badRequest(key, 'this key is not allowed');
  if (typeof value === 'string' && !FREE_TEXT.has(key) && /[\r\n\0]/.test(value)) {
    throw badRequest(key || 'body', 'may not contain CR, LF or NUL');
  }
  return value;
}
