import http, { type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { SwitchboardError, isSwitchboardError, type ErrorCode } from '../errors';
import type { Logger } from '../log';
import type { RequestHead } from './forward/request-head';
import { CLIENT_CLOSED, ignoreError, writeRawError, type ProxyRequest } from './respond';
import type { Service } from './service';
import type { Upstream } from './upstream';

/**
 * WebSocket upgrades, the one thing still sent through `http-proxy` (plain HTTP goes through
 * forward/). Its known traps are handled here: error handlers everywhere an ECONNRESET can
 * surface (#607), both sockets destroyed when an upgrade fails (#783), and the request's
 * headers replaced by the sanitised ones (its `xfwd` would append to a client's
 * X-Forwarded-For). Upgrades are not retried and not counted against the concurrency limit:
 * a tunnel lives for hours.
 */

export interface TunnelContext {
  readonly connectMs: number;
  /** Time to the upstream's 101. */
  readonly responseMs: number;
  readonly logger: Logger;
  /** Once per tunnel, when the client socket closes. */
  complete(tunnel: Tunnel): void;
}

/** Who hears about a WebSocket upgrade's progress. */
export interface UpgradeOwner {
  upgradeSent(proxyReq: ClientRequest, req: ProxyRequest): void;
  upgradeFailed(err: Error, req: ProxyRequest): void;
}

/** One WebSocket tunnel through one upstream. */
export class Tunnel {
  proxyReq: ClientRequest | undefined = undefined;
  /** Upstream side of the established tunnel. */
  upstreamSocket: Duplex | undefined = undefined;
  /** 101 once upgraded; the error status when refused; 0 until known. */
  status = 0;
  error: ErrorCode | undefined = undefined;
  done = false;
  connectTimer: NodeJS.Timeout | undefined = undefined;
  responseTimer: NodeJS.Timeout | undefined = undefined;

  constructor(
    readonly owner: UpgradeOwner,
    readonly upstream: Upstream,
    readonly service: Service,
    readonly startedAt: number,
    readonly client: Duplex,
  ) {}
}

export class TunnelForwarder implements UpgradeOwner {
  private readonly tunnels = new Set<Duplex>();
  private readonly proxy: httpProxy<ProxyRequest>;

  constructor(private readonly context: TunnelContext) {
    this.proxy = httpProxy.createProxyServer<ProxyRequest>({ xfwd: false, prependPath: false });
    // An `error` listener on the proxy, always: without one http-proxy throws (#607).
    this.proxy.on('error', onProxyError);
    this.proxy.on('econnreset', ignoreError);
    this.proxy.on('proxyReqWs', onProxyReqWs);
  }

  forward(req: ProxyRequest, socket: Duplex, head: Buffer, upstream: Upstream, service: Service, startedAt: number, requestHead: RequestHead): void {
    const tunnel = new Tunnel(this, upstream, service, startedAt, socket);
    req.tunnel = tunnel;
    upstream.acquire();
    socket.on('error', (err) => this.context.logger.debug({ err }, 'websocket client socket error'));
    socket.once('close', () => this.end(tunnel));
    this.tunnels.add(socket);
    req.headers = upgradeHeaders(requestHead.headers, req.headers.upgrade as string);
    tunnel.responseTimer = setTimeout(() => this.timeout(tunnel, 'response'), this.context.responseMs);
    // No agent: the socket leaves any pool at the upgrade anyway.
    this.proxy.ws(req, socket, head, { target: { host: upstream.address, port: upstream.port } });
  }

  /** Cuts open tunnels (shutdown, after the drain period). */
  close(): void {
    for (const socket of this.tunnels) socket.destroy();
  }

  upgradeSent(proxyReq: ClientRequest, req: ProxyRequest): void {
    const tunnel = req.tunnel;
    if (!tunnel) return;
    if (tunnel.done || tunnel.error !== undefined) {
      proxyReq.destroy();
      return;
    }
    tunnel.proxyReq = proxyReq;
    tunnel.connectTimer = setTimeout(() => this.timeout(tunnel, 'connect'), this.context.connectMs);
    proxyReq.once('response', (proxyRes: IncomingMessage) => {
      clearTimers(tunnel);
      tunnel.status = proxyRes.statusCode ?? 0;
    });
    proxyReq.once('upgrade', (proxyRes: IncomingMessage, proxySocket: Duplex) => {
      clearTimers(tunnel);
      tunnel.status = 101;
      tunnel.upstreamSocket = proxySocket;
      tunnel.service.passive.response(tunnel.upstream.id, 101);
      proxyRes.headers['x-request-id'] ??= req.headers['x-request-id'];
      proxySocket.once('close', () => tunnel.client.destroy());
    });
  }

  private timeout(tunnel: Tunnel, phase: 'connect' | 'response'): void {
    if (tunnel.done || tunnel.error !== undefined) return;
    const proxyReq = tunnel.proxyReq;
    if (phase === 'connect' && proxyReq?.socket && !proxyReq.socket.connecting) return;
    const ms = phase === 'connect' ? this.context.connectMs : this.context.responseMs;
    const error = new SwitchboardError(
      'upstream_timeout',
      `service "${tunnel.service.name}": upstream did not ${phase === 'connect' ? 'accept a connection' : 'respond'} within ${ms} ms`,
    );
    tunnel.error = error.code;
    // http-proxy reports the destroyed request through its 'error' event (upgradeFailed).
    if (proxyReq) proxyReq.destroy(error);
    else this.fail(tunnel, error);
  }

  upgradeFailed(err: Error, req: ProxyRequest): void {
    const tunnel = req.tunnel;
    if (!tunnel || tunnel.done) return;
    clearTimers(tunnel);
    if (req.socket.destroyed) {
      // The client is gone (and http-proxy's errors from its side land here too).
      tunnel.proxyReq?.destroy();
      return;
    }
    tunnel.service.passive.failure(tunnel.upstream.id);
    this.fail(tunnel, upstreamFailure(err, tunnel));
  }

  private fail(tunnel: Tunnel, failure: SwitchboardError): void {
    tunnel.error = failure.code;
    this.context.logger.debug({ err: failure, service: tunnel.service.name, upstream: tunnel.upstream.id }, 'websocket upgrade failed');
    if (tunnel.proxyReq && !tunnel.proxyReq.destroyed) tunnel.proxyReq.destroy();
    tunnel.upstreamSocket?.destroy();
    if (tunnel.status === 0) {
      tunnel.status = failure.status;
      writeRawError(tunnel.client, failure);
    } else {
      tunnel.client.destroy();
    }
  }

  private end(tunnel: Tunnel): void {
    this.tunnels.delete(tunnel.client);
    tunnel.upstreamSocket?.destroy();
    if (tunnel.done) return;
    tunnel.done = true;
    clearTimers(tunnel);
    if (tunnel.proxyReq && !tunnel.proxyReq.destroyed) tunnel.proxyReq.destroy();
    if (tunnel.status === 0) tunnel.status = CLIENT_CLOSED;
    tunnel.upstream.release();
    this.context.complete(tunnel);
  }
}

function clearTimers(tunnel: Tunnel): void {
  if (tunnel.connectTimer !== undefined) clearTimeout(tunnel.connectTimer);
  if (tunnel.responseTimer !== undefined) clearTimeout(tunnel.responseTimer);
  tunnel.connectTimer = undefined;
  tunnel.responseTimer = undefined;
}

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT']);

function upstreamFailure(err: Error, tunnel: Tunnel): SwitchboardError {
  if (isSwitchboardError(err)) return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'ERROR';
  const name = tunnel.service.name;
  if (tunnel.error === 'upstream_timeout' || TIMEOUT_CODES.has(code)) {
    return new SwitchboardError('upstream_timeout', `service "${name}": upstream timed out (${code})`, { cause: err });
  }
  return new SwitchboardError('upstream_unreachable', `service "${name}": upstream failed (${code})`, { cause: err });
}

function onProxyError(err: Error, req: ProxyRequest): void {
  req.tunnel?.owner.upgradeFailed(err, req);
}

function onProxyReqWs(proxyReq: ClientRequest, req: ProxyRequest): void {
  req.tunnel?.owner.upgradeSent(proxyReq, req);
}

/** The sanitised request headers (request-head.ts) as http-proxy wants them, plus the upgrade's own. */
function upgradeHeaders(flat: readonly string[], upgrade: string): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i].toLowerCase();
    const prior = headers[name];
    headers[name] = prior === undefined ? flat[i + 1] : `${String(prior)}, ${flat[i + 1]}`;
  }
  headers.connection = 'Upgrade';
  headers.upgrade = upgrade;
  return headers;
}

/** Only WebSocket upgrades are proxied; anything else is refused before routing. */
export function isWebSocketUpgrade(req: http.IncomingMessage): boolean {
  return req.headers.upgrade?.toLowerCase() === 'websocket';
}
