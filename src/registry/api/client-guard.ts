import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiConfig } from '../../config/types';
import { SwitchboardError } from '../../errors';
import { counter } from '../../metrics';
import { TokenBuckets } from '../token-buckets';

/**
 * What the API port accepts from a client before any route runs, cheapest check first:
 *  - at most `maxConnsPerClient` connections per client address (Consul's
 *    http_max_conns_per_client): more are answered 429 on the raw socket and closed;
 *  - at most 100 header lines (431, as on the proxy port);
 *  - a Host header that is an IP literal, localhost, or one of `api.allowedHosts` (else 403:
 *    a web page cannot reach the API through DNS rebinding);
 *  - protected mode: writes only from loopback clients (403 otherwise).
 */

const MAX_HEADERS = 100;
const WRITE_METHODS = new Set(['PUT', 'POST', 'DELETE', 'PATCH']);

const refusedTotal = counter('switchboard_registry_refused_requests_total', 'API requests refused before any route ran, by reason', ['reason']);

export type ClientGuardConfig = Pick<
  ApiConfig,
  'protectedMode' | 'allowedHosts' | 'maxConnsPerClient' | 'requestTimeout' | 'writeRateLimit' | 'writeBurst' | 'maxBlockingQueriesPerClient'
>;

export function guardClients(app: FastifyInstance, config: ClientGuardConfig): void {
  limitConnections(app, config.maxConnsPerClient);
  limitBlockingQueries(app, config.maxBlockingQueriesPerClient);
  if (config.writeRateLimit > 0) limitWriteRate(app, config.writeRateLimit, config.writeBurst);
  app.addHook('onRequest', async (request, reply) => bodyDeadline(request, reply, config.requestTimeout));
  // node keeps at most maxHeadersCount lines; one more than ours lets the hook see the excess.
  app.server.maxHeadersCount = MAX_HEADERS + 1;
  const allowedHosts = new Set(config.allowedHosts.map((h) => h.toLowerCase()));
  app.addHook('onRequest', async (request, reply) => {
    const refusal = refusalOf(request, config.protectedMode, allowedHosts);
    if (refusal === undefined) return;
    refusedTotal.inc({ reason: refusal.reason });
    if (refusal.error.code === 'too_many_headers') reply.header('connection', 'close');
    return sendRefusal(reply, refusal.error);
  });
}

interface Refusal {
  reason: string;
  error: SwitchboardError;
}

function refusalOf(request: FastifyRequest, protectedMode: boolean, allowedHosts: ReadonlySet<string>): Refusal | undefined {
  if (request.raw.rawHeaders.length / 2 > MAX_HEADERS) {
    return { reason: 'headers', error: new SwitchboardError('too_many_headers', `more than ${MAX_HEADERS} request header lines`) };
  }
  const host = request.headers.host;
  if (host !== undefined && !isAllowedHost(host, allowedHosts)) {
    return {
      reason: 'host',
      error: new SwitchboardError('forbidden', `this API does not answer to Host ${JSON.stringify(host.slice(0, 100))}; add the name to api.allowedHosts (--api-allowed-hosts)`, { field: 'host' }),
    };
  }
  if (protectedMode && WRITE_METHODS.has(request.method) && !isLoopback(request.socket.remoteAddress)) {
    return {
      reason: 'protected_mode',
      error: new SwitchboardError(
        'forbidden',
        'protected mode: this registry accepts writes only from loopback clients. Put the API behind a firewall or private network and start it with api.protectedMode: false (--api-protected-mode=false) to accept writes from other hosts',
      ),
    };
  }
  return undefined;
}

async function sendRefusal(reply: FastifyReply, error: SwitchboardError): Promise<FastifyReply> {
  return reply.status(error.status).send(error.toJSON());
}

/** `name[:port]` or `[v6][:port]` whose name is an IP literal, localhost, or an allowed host. */
export function isAllowedHost(header: string, allowed: ReadonlySet<string>): boolean {
  let name = header.trim().toLowerCase();
  if (name.startsWith('[')) name = name.slice(1, Math.max(1, name.indexOf(']')));
  else if (name.includes(':')) name = name.slice(0, name.lastIndexOf(':'));
  if (name.endsWith('.')) name = name.slice(0, -1);
  return isIP(name) !== 0 || name === 'localhost' || allowed.has(name);
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

/**
 * The whole request must be in within `requestTimeout`. node's own requestTimeout did not cut a
 * body dripped into fastify a byte at a time (measured: never, over 4 s with a 1 s timeout),
 * so the API keeps its own deadline: a request still incomplete then gets 408 on the raw
 * socket, which is closed.
 */
function bodyDeadline(request: FastifyRequest, reply: FastifyReply, timeoutMs: number): void {
  const raw = request.raw;
  if (raw.complete) return;
  const timer = setTimeout(() => {
    if (raw.complete || reply.raw.headersSent) return;
    refusedTotal.inc({ reason: 'request_timeout' });
    const socket = raw.socket as Socket | null;
    if (socket === null || socket.destroyed) return;
    socket.end(`HTTP/1.1 408 ${STATUS_CODES[408]}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
    socket.destroySoon();
  }, timeoutMs);
  // Only a stalled request keeps it: nothing else waits on this timer.
  timer.unref();
  const clear = (): void => clearTimeout(timer);
  raw.once('end', clear);
  raw.once('close', clear);
  reply.raw.once('finish', clear);
}

/** Long polls hold a socket and a timer each: one address may park only so many. */
function limitBlockingQueries(app: FastifyInstance, max: number): void {
  const parked = new Map<string, number>();
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'GET' || (request.query as Record<string, unknown> | undefined)?.index === undefined) return;
    const address = request.socket.remoteAddress ?? '';
    const count = (parked.get(address) ?? 0) + 1;
    if (count > max) {
      refusedTotal.inc({ reason: 'blocking_queries' });
      return sendRefusal(reply, new SwitchboardError('too_many_requests', `more than ${max} blocking queries waiting from this address`));
    }
    parked.set(address, count);
    reply.raw.once('close', () => {
      const left = (parked.get(address) ?? 1) - 1;
      if (left <= 0) parked.delete(address);
      else parked.set(address, left);
    });
  });
}

/** A token bucket per writer (its token, or its address without one): `perSecond` writes a second, `burst` at once. */
function limitWriteRate(app: FastifyInstance, perSecond: number, burst: number): void {
  const buckets = new TokenBuckets(perSecond, burst);
  app.addHook('onRequest', async (request, reply) => {
    if (!WRITE_METHODS.has(request.method)) return;
    const waitSeconds = buckets.take(writerKey(request));
    if (waitSeconds > 0) {
      refusedTotal.inc({ reason: 'write_rate' });
      reply.header('retry-after', String(Math.max(1, Math.ceil(waitSeconds))));
      return sendRefusal(reply, new SwitchboardError('too_many_requests', `more than ${perSecond} writes a second from this client (api.writeRateLimit)`));
    }
  });
}

function writerKey(request: FastifyRequest): string {
  const token = request.headers['x-consul-token'] ?? (request.query as Record<string, unknown> | undefined)?.token ?? request.headers.authorization;
  // Hashed: a token must not sit in memory as a map key in clear longer than the request.
  return typeof token === 'string' && token !== '' ? `t:${createHash('sha256').update(token).digest('base64')}` : `a:${request.socket.remoteAddress ?? ''}`;
}

function limitConnections(app: FastifyInstance, max: number): void {
  const open = new Map<string, number>();
  app.server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = (open.get(address) ?? 0) + 1;
    if (count > max) {
      refusedTotal.inc({ reason: 'connections' });
      const body = JSON.stringify(new SwitchboardError('too_many_requests', `more than ${max} open connections from this address`).toJSON());
      socket.on('error', () => undefined);
      socket.end(`HTTP/1.1 429 ${STATUS_CODES[429]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      socket.destroySoon();
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}
