import http, { STATUS_CODES, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { Http2ServerRequest } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { SwitchboardError } from '../errors';
import type { Exchange } from './forward/dispatch';
import type { Tunnel } from './websocket';

/**
 * What the proxy answers itself: the request class its server uses, and the one JSON error
 * writer (on a response, or on a raw socket for upgrades and CONNECT). Every error the proxy
 * makes is `{"error": code, "message": …}` with the code's status and the request id.
 */

/** The status recorded for a request whose client left before a response started (nginx's 499). */
export const CLIENT_CLOSED = 499;

/** The proxy server's request class (pass it to http.createServer). */
export class ProxyRequest extends http.IncomingMessage {
  /** Set once the head was read (request-head.ts); '' before. */
  requestId = '';
  /** The proxy's own error code when it answered with one (the access log says which). */
  errorCode: string | undefined = undefined;
  exchange: Exchange | undefined = undefined;
  tunnel: Tunnel | undefined = undefined;
}

/**
 * The same fields on an HTTP/2 request (node's compatibility API). The forwarding path
 * treats both alike through what they share — rawHeaders, url, method, the body stream,
 * socket, and a response with writeHead/write/end and `close`/`drain` events; request-head.ts
 * reads the pseudo-headers, and `writeResponseHead` leaves out what HTTP/2 has no place for.
 */
export class ProxyH2Request extends Http2ServerRequest {
  requestId = '';
  errorCode: string | undefined = undefined;
  exchange: Exchange | undefined = undefined;
  tunnel: Tunnel | undefined = undefined;
}

/** The request spoke HTTP/2 (its response has no reason phrase and no connection headers). */
export function isHttp2(req: http.IncomingMessage): boolean {
  return req.httpVersionMajor === 2;
}

/**
 * writeHead with the reason phrase where the protocol has one (HTTP/2 has none: node warns
 * and drops it). Headers left by an earlier refused writeHead (HTTP/2 keeps those it had
 * set before the one it refused) are cleared first.
 */
export function writeResponseHead(res: ServerResponse, status: number, reason: string, headers: string[] | OutgoingHttpHeaders): void {
  if (isHttp2(res.req)) {
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.writeHead(status, headers);
  } else if (reason) res.writeHead(status, reason, headers);
  else res.writeHead(status, headers);
}

/**
 * A proxy-made error: JSON with the stable code. A started response can only be cut. The
 * status line is written in full, so nothing an upstream's refused head left behind (its
 * reason phrase) is reused.
 */
export function sendError(res: ServerResponse, error: SwitchboardError, extra?: readonly string[]): void {
  (res.req as ProxyRequest).errorCode = error.code;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(error.toJSON());
  const headers = ['x-request-id', (res.req as ProxyRequest).requestId || '-', 'content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(body))];
  if (extra !== undefined) headers.push(...extra);
  writeResponseHead(res, error.status, STATUS_CODES[error.status] ?? 'Error', headers);
  res.end(body);
}

/** The same JSON error on a raw socket, which is then closed. */
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
