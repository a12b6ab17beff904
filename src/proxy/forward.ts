import { randomUUID } from 'node:crypto';
import http, { STATUS_CODES, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { SwitchboardError, isSwitchboardError, type ErrorCode } from '../errors';
import type { Logger } from '../log';
import type { Upstream } from './upstream';

/**
 * Forwarding, and the only module that knows http-proxy (barely maintained: keep it
 * swappable). Its known traps are handled here: a keep-alive agent per upstream (#929),
 * error handlers everywhere an ECONNRESET can surface (#607), the upstream request aborted
 * when the client leaves (#1586), both sockets destroyed when an upgrade fails (#783).
 *
 * Per request we allocate one Exchange and one listener closure; http-proxy's events find
 * the exchange on the request object (`ProxyRequest`), so no other closures are needed.
 */

/** The proxy server's request class (pass it to http.createServer). */
export class ProxyRequest extends http.IncomingMessage {
  exchange: Exchange | undefined = undefined;
}

/** One client request (or WebSocket tunnel) forwarded to one upstream. */
export class Exchange {
  proxyReq: ClientRequest | undefined = undefined;
  /** Upstream side of an established WebSocket tunnel. */
  tunnel: Duplex | undefined = undefined;
  /** Status the client got; 0 until known. */
  status = 0;
  error: ErrorCode | undefined = undefined;
  done = false;
  connectTimer: NodeJS.Timeout | undefined = undefined;
  responseTimer: NodeJS.Timeout | undefined = undefined;

  constructor(
    readonly forwarder: Forwarder,
    readonly upstream: Upstream,
    readonly service: string,
    readonly startedAt: number,
    /** The client side: a response, or the raw socket of an upgrade. */
    readonly client: ServerResponse | Duplex,
  ) {}

  get websocket(): boolean {
    return !(this.client instanceof http.ServerResponse);
  }
}

export interface ForwarderOptions {
  connectMs: number;
  /** Time to the upstream's response headers (101 for WebSockets). */
  responseMs: number;
  logger: Logger;
  /** Once per exchange, when the client side ends. `status` 499: the client left first. */
  onComplete: (exchange: Exchange, status: number) => void;
}

export const CLIENT_CLOSED = 499;

export class Forwarder {
  private readonly proxy: httpProxy;
  private readonly connectMs: number;
  private readonly responseMs: number;
  private readonly logger: Logger;
  private readonly onComplete: (exchange: Exchange, status: number) => void;
  private readonly webOptions = new WeakMap<Upstream, httpProxy.ServerOptions>();
  private readonly tunnels = new Set<Duplex>();
  private closing = false;

  constructor(options: ForwarderOptions) {
    this.connectMs = options.connectMs;
    this.responseMs = options.responseMs;
    this.logger = options.logger;
    this.onComplete = options.onComplete;
    this.proxy = httpProxy.createProxyServer({});
    this.proxy.on('error', (err, req, target) => this.onProxyError(err, req as ProxyRequest, target));
    this.proxy.on('proxyReq', (proxyReq, req) => this.onProxyReq(proxyReq, req as ProxyRequest));
    this.proxy.on('proxyRes', (proxyRes, req, res) => this.onProxyRes(proxyRes, req as ProxyRequest, res));
    this.proxy.on('proxyReqWs', (proxyReq, req, socket) => this.onProxyReqWs(proxyReq, req as ProxyRequest, socket));
  }

  web(req: ProxyRequest, res: ServerResponse, upstream: Upstream, service: string, startedAt: number): void {
    const exchange = new Exchange(this, upstream, service, startedAt, res);
    req.exchange = exchange;
    upstream.acquire();
    res.once('close', onClientResponseClose);
    prepareRequestHeaders(req);
    exchange.responseTimer = setTimeout(onResponseTimeout, this.responseMs, exchange);
    this.proxy.web(req, res, this.optionsFor(upstream));
  }

  ws(req: ProxyRequest, socket: Duplex, head: Buffer, upstream: Upstream, service: string, startedAt: number): void {
    const exchange = new Exchange(this, upstream, service, startedAt, socket);
    req.exchange = exchange;
    upstream.acquire();
    socket.on('error', (err) => this.logger.debug({ err }, 'websocket client socket error'));
    socket.once('close', () => this.endTunnel(exchange, socket));
    this.tunnels.add(socket);
    setForwardedHeaders(req);
    exchange.responseTimer = setTimeout(onResponseTimeout, this.responseMs, exchange);
    // No agent: the socket leaves any pool at the upgrade anyway.
    this.proxy.ws(req, socket, head, { target: this.optionsFor(upstream).target, toProxy: true, prependPath: false });
  }

  /** From now on responses ask clients to close their connections. */
  startDraining(): void {
    this.closing = true;
  }

  /** Cuts open WebSocket tunnels (shutdown, after the drain period). */
  close(): void {
    for (const socket of this.tunnels) socket.destroy();
  }

  /** Ends an exchange exactly once: timers off, upstream released, accounted. */
  finish(exchange: Exchange, status: number): void {
    if (exchange.done) return;
    exchange.done = true;
    clearTimers(exchange);
    // A client that left must not leave the upstream working for nobody. After a normal
    // completion the upstream request is already marked destroyed (its socket is back
    // in the pool), so this never cuts a reusable connection.
    const proxyReq = exchange.proxyReq;
    if (proxyReq && !proxyReq.destroyed) proxyReq.destroy();
    exchange.upstream.release();
    this.onComplete(exchange, status);
  }

  timeout(exchange: Exchange, phase: 'connect' | 'response'): void {
    if (exchange.done || exchange.error !== undefined) return;
    const proxyReq = exchange.proxyReq;
    if (phase === 'connect' && proxyReq?.socket && !proxyReq.socket.connecting) return;
    const ms = phase === 'connect' ? this.connectMs : this.responseMs;
    const error = new SwitchboardError(
      'upstream_timeout',
      `service "${exchange.service}": upstream did not ${phase === 'connect' ? 'accept a connection' : 'respond'} within ${ms} ms`,
    );
    exchange.error = error.code;
    // http-proxy reports the destroyed request through its 'error' event (onProxyError).
    if (proxyReq) proxyReq.destroy(error);
    else this.fail(exchange, error);
  }

  private optionsFor(upstream: Upstream): httpProxy.ServerOptions {
    let options = this.webOptions.get(upstream);
    if (!options) {
      // toProxy: use req.url as is rather than url.parse() it on every request.
      options = {
        target: { host: upstream.address, port: upstream.port, protocol: 'http:' },
        agent: upstream.agent,
        toProxy: true,
        prependPath: false,
      };
      this.webOptions.set(upstream, options);
    }
    return options;
  }

  private onProxyReq(proxyReq: ClientRequest, req: ProxyRequest): void {
    const exchange = req.exchange;
    if (!exchange) return;
    if (exchange.done || exchange.error !== undefined) {
      proxyReq.destroy();
      return;
    }
    exchange.proxyReq = proxyReq;
    if (proxyReq.socket?.connecting) {
      exchange.connectTimer = setTimeout(onConnectTimeout, this.connectMs, exchange);
    }
  }

  private onProxyRes(proxyRes: IncomingMessage, req: ProxyRequest, res: ServerResponse): void {
    const exchange = req.exchange;
    if (exchange) clearTimers(exchange);
    // Hop-by-hop: the upstream's connection to us says nothing about ours to the client.
    const headers = proxyRes.headers;
    delete headers['keep-alive'];
    headers.connection = this.closing || !res.shouldKeepAlive ? 'close' : 'keep-alive';
    // An upstream that closes mid-body must not leave the client waiting forever.
    proxyRes.once('close', () => {
      if (!proxyRes.complete) res.destroy();
    });
  }

  private onProxyReqWs(proxyReq: ClientRequest, req: ProxyRequest, socket: Duplex): void {
    const exchange = req.exchange;
    if (!exchange) return;
    if (exchange.done || exchange.error !== undefined) {
      proxyReq.destroy();
      return;
    }
    exchange.proxyReq = proxyReq;
    exchange.connectTimer = setTimeout(onConnectTimeout, this.connectMs, exchange);
    proxyReq.once('response', (proxyRes: IncomingMessage) => {
      clearTimers(exchange);
      exchange.status = proxyRes.statusCode ?? 0;
    });
    proxyReq.once('upgrade', (proxyRes: IncomingMessage, proxySocket: Duplex) => {
      clearTimers(exchange);
      exchange.status = 101;
      exchange.tunnel = proxySocket;
      proxyRes.headers['x-request-id'] ??= req.headers['x-request-id'];
      proxySocket.once('close', () => socket.destroy());
    });
  }

  private onProxyError(err: Error, req: ProxyRequest, target: ServerResponse | Duplex): void {
    const exchange = req.exchange;
    if (!exchange || exchange.done) return;
    clearTimers(exchange);
    if (req.socket.destroyed) {
      // The client is gone (and http-proxy's errors from its side land here too).
      exchange.proxyReq?.destroy();
      return;
    }
    this.fail(exchange, upstreamFailure(err, exchange), target);
  }

  private fail(exchange: Exchange, failure: SwitchboardError, target = exchange.client): void {
    exchange.error = failure.code;
    this.logger.debug(
      { err: failure, service: exchange.service, upstream: `${exchange.upstream.address}:${exchange.upstream.port}` },
      'upstream request failed',
    );
    if (target instanceof http.ServerResponse) sendError(target, failure);
    else this.failTunnel(exchange, target, failure);
  }

  private failTunnel(exchange: Exchange, socket: Duplex, failure: SwitchboardError): void {
    if (exchange.proxyReq && !exchange.proxyReq.destroyed) exchange.proxyReq.destroy();
    exchange.tunnel?.destroy();
    if (exchange.status === 0) {
      exchange.status = failure.status;
      writeRawError(socket, failure);
    } else {
      socket.destroy();
    }
  }

  private endTunnel(exchange: Exchange, socket: Duplex): void {
    this.tunnels.delete(socket);
    exchange.tunnel?.destroy();
    this.finish(exchange, exchange.status === 0 ? CLIENT_CLOSED : exchange.status);
  }
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

/** For sockets we are closing anyway: a late ECONNRESET must not crash the process. */
function ignoreError(): void {}

function onClientResponseClose(this: ServerResponse): void {
  const exchange = (this.req as ProxyRequest).exchange;
  if (exchange) exchange.forwarder.finish(exchange, this.headersSent ? this.statusCode : CLIENT_CLOSED);
}

function onResponseTimeout(exchange: Exchange): void {
  exchange.responseTimer = undefined;
  exchange.forwarder.timeout(exchange, 'response');
}

function onConnectTimeout(exchange: Exchange): void {
  exchange.connectTimer = undefined;
  exchange.forwarder.timeout(exchange, 'connect');
}

function clearTimers(exchange: Exchange): void {
  if (exchange.connectTimer !== undefined) clearTimeout(exchange.connectTimer);
  if (exchange.responseTimer !== undefined) clearTimeout(exchange.responseTimer);
  exchange.connectTimer = undefined;
  exchange.responseTimer = undefined;
}

/**
 * Connection headers describe the client's hop, not ours: without removing them a client's
 * `Connection: close` would cost us the pooled upstream connection. `Expect` is dropped
 * because node already answered `100 Continue`.
 */
function prepareRequestHeaders(req: IncomingMessage): void {
  const headers = req.headers;
  if (headers.connection !== undefined) delete headers.connection;
  if (headers['keep-alive'] !== undefined) delete headers['keep-alive'];
  if (headers['proxy-connection'] !== undefined) delete headers['proxy-connection'];
  if (headers.expect !== undefined) delete headers.expect;
  setForwardedHeaders(req);
}

/** X-Forwarded-For gets the client appended; Proto and Host are kept when an earlier hop set them. */
function setForwardedHeaders(req: IncomingMessage): void {
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

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT']);

function upstreamFailure(err: Error, exchange: Exchange): SwitchboardError {
  if (isSwitchboardError(err)) return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'ERROR';
  if (exchange.error === 'upstream_timeout' || TIMEOUT_CODES.has(code)) {
    return new SwitchboardError('upstream_timeout', `service "${exchange.service}": upstream timed out (${code})`, {
      cause: err,
    });
  }
  return new SwitchboardError('upstream_unreachable', `service "${exchange.service}": upstream failed (${code})`, {
    cause: err,
  });
}
