import { randomUUID } from 'node:crypto';
import http, { STATUS_CODES, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SwitchboardError } from '../errors';
import type { Exchange } from './exchange';
import type { Tunnel } from './websocket';
import type { Upstream } from './upstream';

/**
 * "Forward this request once": one HTTP attempt to one upstream over its keep-alive agent,
 * and the helpers every path shares (request ids, forwarded headers, JSON errors). Retries,
 * outlier accounting and metrics wrap this in exchange.ts, retry.ts and health/passive.ts.
 *
 * An attempt reports to its owner through three module-level listeners that find the owner
 * on the upstream request, so sending one allocates no closures.
 */

/** The proxy server's request class (pass it to http.createServer). */
export class ProxyRequest extends http.IncomingMessage {
  exchange: Exchange | undefined = undefined;
  tunnel: Tunnel | undefined = undefined;
}

/** Who hears about one attempt. Events of an attempt the owner has given up on must be ignored. */
export interface AttemptOwner {
  attemptSocket(proxyReq: ClientRequest, socket: Socket): void;
  attemptResponse(proxyReq: ClientRequest, proxyRes: IncomingMessage): void;
  attemptError(proxyReq: ClientRequest, err: Error): void;
  /** Only after `watchAttemptClose`: the upstream request closed (done, or cut mid-response). */
  attemptClosed(proxyReq: ClientRequest): void;
}

const OWNER = Symbol('switchboard.attemptOwner');

interface OwnedRequest extends ClientRequest {
  [OWNER]?: AttemptOwner;
}

/**
 * Sends `req`'s method, target and headers to `upstream`. The caller writes the body: ends
 * the returned request at once (no body or a buffered one), or pipes the client request into
 * it once the socket is connected (a streamed body).
 */
export function sendAttempt(owner: AttemptOwner, req: IncomingMessage, upstream: Upstream): ClientRequest {
  const proxyReq: OwnedRequest = http.request({
    host: upstream.address,
    port: upstream.port,
    method: req.method,
    path: req.url,
    headers: req.headers,
    agent: upstream.agent,
  });
  proxyReq[OWNER] = owner;
  proxyReq.on('socket', onAttemptSocket);
  proxyReq.on('response', onAttemptResponse);
  // `on`, not `once`: a second error (destroy after a failure) must not go unhandled.
  proxyReq.on('error', onAttemptError);
  return proxyReq;
}

/** Asks for `attemptClosed` (once the response is being relayed). */
export function watchAttemptClose(proxyReq: ClientRequest): void {
  proxyReq.on('close', onAttemptClose);
}

function onAttemptClose(this: OwnedRequest): void {
  this[OWNER]?.attemptClosed(this);
}

function onAttemptSocket(this: OwnedRequest, socket: Socket): void {
  this[OWNER]?.attemptSocket(this, socket);
}

function onAttemptResponse(this: OwnedRequest, proxyRes: IncomingMessage): void {
  const owner = this[OWNER];
  if (owner) owner.attemptResponse(this, proxyRes);
  else proxyRes.resume();
}

function onAttemptError(this: OwnedRequest, err: Error): void {
  this[OWNER]?.attemptError(this, err);
}

/** Keeps the client's `x-request-id` or makes one; echoes it on the response. */
export function ensureRequestId(req: IncomingMessage, res?: ServerResponse): string {
  let id = req.headers['x-request-id'];
  if (typeof id !== 'string' || id.length === 0 || id.length > 200) {
    id = randomUUID();
    req.headers['x-request-id'] = id;
  }
  res?.setHeader('x-request-id', id);
  return id;
}

/** A proxy-generated error: JSON with the stable code; a started response can only be cut. */
export function sendError(res: ServerResponse, error: SwitchboardError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(error.toJSON());
  res.statusCode = error.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}

/** The same JSON error on a raw socket (failed or refused upgrades). */
export function writeRawError(socket: Duplex, error: SwitchboardError): void {
  if (socket.listenerCount('error') === 0) socket.on('error', ignoreError);
  const body = JSON.stringify(error.toJSON());
  const head =
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`;
  socket.end(head + body, () => socket.destroy());
}

/** For sockets and streams we are done with: a late ECONNRESET must not crash the process. */
export function ignoreError(): void {}

/**
 * Connection headers describe the client's hop, not ours: without removing them a client's
 * `Connection: close` would cost us the pooled upstream connection. `Expect` is dropped
 * because node already answered `100 Continue`.
 */
export function prepareRequestHeaders(req: IncomingMessage): void {
  const headers = req.headers;
  if (headers.connection !== undefined) delete headers.connection;
  if (headers['keep-alive'] !== undefined) delete headers['keep-alive'];
  if (headers['proxy-connection'] !== undefined) delete headers['proxy-connection'];
  if (headers.expect !== undefined) delete headers.expect;
  setForwardedHeaders(req);
}

/** The upstream's hop-by-hop headers say nothing about our connection to the client. */
export function prepareResponseHeaders(req: IncomingMessage, proxyRes: IncomingMessage, closing: boolean): http.IncomingHttpHeaders {
  const headers = proxyRes.headers;
  if (headers.connection !== undefined) delete headers.connection;
  if (headers['keep-alive'] !== undefined) delete headers['keep-alive'];
  // An HTTP/1.0 client cannot read chunked encoding; node ends the body by closing instead.
  if (req.httpVersion === '1.0' && headers['transfer-encoding'] !== undefined) delete headers['transfer-encoding'];
  if (closing) headers.connection = 'close';
  return headers;
}

/** X-Forwarded-For gets the client appended; Proto and Host are kept when an earlier hop set them. */
export function setForwardedHeaders(req: IncomingMessage): void {
  const headers = req.headers;
  const client = clientAddress(req);
  if (client !== undefined) {
    const prior = headers['x-forwarded-for'];
    headers['x-forwarded-for'] = prior ? `${prior}, ${client}` : client;
  }
  if (headers['x-forwarded-proto'] === undefined) {
    headers['x-forwarded-proto'] = 'encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http';
  }
  if (headers['x-forwarded-host'] === undefined && headers.host !== undefined) {
    headers['x-forwarded-host'] = headers.host;
  }
}

function clientAddress(req: IncomingMessage): string | undefined {
  const address = req.socket.remoteAddress;
  return address?.startsWith('::ffff:') ? address.slice(7) : address;
}

/** Errors that happen before a connection exists: nothing of the request reached the upstream. */
const CONNECT_PHASE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);

/** True when `err` on `proxyReq` proves the request never reached the upstream. */
export function failedBeforeSending(proxyReq: ClientRequest, err: Error): boolean {
  if (proxyReq.reusedSocket) return false;
  return CONNECT_PHASE_CODES.has((err as NodeJS.ErrnoException).code ?? '');
}

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT']);

export function isTimeoutError(err: Error): boolean {
  return TIMEOUT_CODES.has((err as NodeJS.ErrnoException).code ?? '');
}
