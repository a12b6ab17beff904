import http, { STATUS_CODES, type ServerResponse } from 'node:http';
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
  res.writeHead(error.status, STATUS_CODES[error.status] ?? 'Error', headers);
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
