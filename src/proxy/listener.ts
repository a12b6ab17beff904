import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo, ListenOptions, Server as NetServer, Socket } from 'node:net';
import { listenTarget } from '../config/schema';
import type { ClientTimeouts, ListenerTlsConfig, ProxyConfig } from '../config/types';
import { performance } from 'node:perf_hooks';
import { SwitchboardError } from '../errors';
import { counter } from '../metrics';
import type { Logger } from '../log';
import type { Server as TlsServer } from 'node:tls';
import { ServerCertificates, serveCertificates, servesTls, type CertificateReloader } from '../tls/server-certificates';
import { ProxyH2Request, ProxyRequest } from './respond';

/**
 * Where clients connect: plain HTTP/1.1, or — with `proxy.tls` certificates — TLS with
 * HTTP/2 and HTTP/1.1 negotiated by ALPN on the same port (node's http2 server with
 * `allowHTTP1`; both kinds of request reach the same `request` handler), plus an optional
 * plain-HTTP listener that redirects to https. This module owns what differs between them:
 * building the server, its client limits, certificates and their reloads, and closing
 * HTTP/2 sessions (GOAWAY) at shutdown; server.ts sees one server either way.
 */

type ProxyTls = ProxyConfig['tls'];

/** What server.ts needs of the server, whichever kind it is. */
export type ClientServer = NetServer & {
  headersTimeout: number;
  requestTimeout: number;
  maxHeadersCount: number | null;
};

export class ProxyListener {
  readonly server: ClientServer;
  /** The certificates served; undefined without TLS. */
  readonly certificates: ServerCertificates | undefined;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** HTTP/1.1 connections over TLS: node's http2 server cannot close them for us. */
  private readonly tlsSockets = new Set<Socket>();
  private redirect: http.Server | undefined;
  private reload: CertificateReloader | undefined;

  constructor(
    private readonly config: ProxyConfig,
    private readonly logger: Logger,
  ) {
    const tls = config.tls;
    this.certificates = servesTls(tls) ? new ServerCertificates(tls, 'proxy.tls') : undefined;
    this.server = this.createServer();
    this.applyLimits(config.clientTimeouts, config.maxRequestHeaders);
  }

  get secure(): boolean {
    return this.certificates !== undefined;
  }

  /** `host:port` actually bound (the port is real even when the config asked for 0). */
  get address(): string {
    return boundAddress(this.server) ?? this.config.listen;
  }

  get redirectAddress(): string | undefined {
    return this.redirect !== undefined ? boundAddress(this.redirect) : undefined;
  }

  /** Client timeouts and the header cap; also on a reload. */
  applyLimits(timeouts: ClientTimeouts, maxHeaders: number): void {
    const server = this.server;
    server.headersTimeout = timeouts.header;
    server.requestTimeout = timeouts.request;
    // node keeps at most `maxHeadersCount` header lines; one more than ours lets
    // request-head.ts see the excess and answer 431.
    server.maxHeadersCount = maxHeaders + 1;
  }

  async listen(): Promise<void> {
    const { host, port } = listenTarget(this.config.listen, 'proxy.listen');
    // reuseport: this worker binds the port itself beside the others (exclusive: not through
    // node:cluster's primary); the kernel spreads connections among them.
    const options: ListenOptions =
      this.config.workerSockets === 'reuseport' ? ({ port, host, exclusive: true, reusePort: true } as ListenOptions) : { port, host };
    await listenOn(this.server, options, this.config.listen);
    const redirectListen = this.config.tls.redirectListen;
    if (this.secure && redirectListen !== '') {
      const target = listenTarget(redirectListen, 'proxy.tls.redirectListen');
      this.redirect = http.createServer({ headersTimeout: 10_000, requestTimeout: 10_000 }, (req, res) => {
        try {
          redirectToHttps(req, res, httpsPort(this.server));
        } catch (err) {
          // Nothing a client sends may end the process; node refused what we would have written.
          this.logger.warn({ err }, 'redirect failed');
          res.destroy();
        }
      });
      await listenOn(this.redirect, target, redirectListen);
      this.redirect.on('error', (err) => this.logger.error({ err }, 'redirect listener error'));
    }
    if (this.certificates !== undefined) {
      this.reload = serveCertificates(this.server as unknown as TlsServer, this.certificates, this.logger.child({ listener: 'proxy' }));
    }
  }

  /**
   * A configuration reload: certificates (the list, the minimum version, and the files'
   * contents, which may have changed while the settings did not) apply live; turning TLS on
   * or off, HTTP/2 and the redirect listener need a restart. `kept`: the settings now in force.
   */
  reconfigureTls(next: ProxyTls): { applied: string[]; restartRequired: string[]; failed: string[]; kept: ProxyTls } {
    const before = this.config.tls;
    const restartRequired: string[] = [];
    if ((next.certificates.length > 0) !== this.secure) restartRequired.push('proxy.tls.certificates');
    for (const key of ['http2', 'maxConcurrentStreams', 'redirectListen'] as const) if (next[key] !== before[key]) restartRequired.push(`proxy.tls.${key}`);
    const certificates = this.certificates;
    if (certificates === undefined || next.certificates.length === 0) return { applied: [], restartRequired, failed: [], kept: before };
    const error = this.reloadCertificates('reload', { certificates: next.certificates, minVersion: next.minVersion });
    const settings = certificates.settings;
    const kept = { ...before, certificates: [...settings.certificates], minVersion: settings.minVersion };
    return error === undefined ? { applied: ['proxy.tls.certificates'], restartRequired, failed: [], kept } : { applied: [], restartRequired, failed: [`${error.field ?? 'proxy.tls'}: ${error.message} (the old certificates stay)`], kept };
  }

  /** Re-reads the certificate files; a failure keeps the old ones. Returns the error, if any. */
  reloadCertificates(why: string, settings?: ListenerTlsConfig): SwitchboardError | undefined {
    return this.reload?.(why, settings);
  }

  /** Stop accepting; HTTP/2 clients get GOAWAY (their open streams finish). */
  close(): Promise<void> {
    this.certificates?.close();
    this.redirect?.close();
    this.redirect?.closeAllConnections();
    for (const session of this.sessions) session.close();
    return new Promise((resolve) => {
      if (this.server.listening) this.server.close(() => resolve());
      else resolve();
    });
  }

  /** Idle keep-alive connections are closed at once when the drain starts. */
  closeIdleConnections(): void {
    if (!this.secure) (this.server as unknown as http.Server).closeIdleConnections();
  }

  /** After the drain: cut whatever is left. */
  closeAllConnections(): void {
    if (!this.secure) {
      (this.server as unknown as http.Server).closeAllConnections();
      return;
    }
    for (const session of this.sessions) session.destroy();
    for (const socket of this.tlsSockets) socket.destroy();
  }

  private createServer(): ClientServer {
    const { clientTimeouts: timeouts, tls } = this.config;
    // node checks its client timeouts on a timer (30 s by default); often enough that a
    // short timeout is enforced close to when it expires.
    const shortest = timeouts.request > 0 ? Math.min(timeouts.header, timeouts.request) : timeouts.header;
    const connectionsCheckingInterval = Math.max(50, Math.min(1_000, Math.floor(shortest / 4)));
    if (this.certificates === undefined) {
      return http.createServer({ IncomingMessage: ProxyRequest, connectionsCheckingInterval }) as unknown as ClientServer;
    }
    const certificateOptions = this.certificates.serverOptions();
    if (!tls.http2) {
      return https.createServer({ ...certificateOptions, IncomingMessage: ProxyRequest, connectionsCheckingInterval }) as unknown as ClientServer;
    }
    const server = http2.createSecureServer({
      ...certificateOptions,
      allowHTTP1: true,
      Http1IncomingMessage: ProxyRequest,
      Http2ServerRequest: ProxyH2Request,
      // Header lines per request: ours (+1 to see the excess) and the four pseudo-headers.
      maxHeaderListPairs: this.config.maxRequestHeaders + 5,
      settings: { maxConcurrentStreams: tls.maxConcurrentStreams, enablePush: false },
    });
    (server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval = connectionsCheckingInterval;
    server.on('session', (session: http2.ServerHttp2Session) => {
      this.sessions.add(session);
      guardResetFlood(session, this.logger);
      session.once('close', () => this.sessions.delete(session));
      // A session's errors (a protocol violation, a reset flood) end that session only.
      session.on('error', (err) => this.logger.debug({ err }, 'http2 session error'));
    });
    server.on('secureConnection', (socket: Socket) => {
      this.tlsSockets.add(socket);
      socket.once('close', () => this.tlsSockets.delete(socket));
    });
    // A handshake that fails (a scanner, a client that distrusts us) is the client's problem.
    server.on('tlsClientError', (err) => {
      if (this.logger.isLevelEnabled('debug')) this.logger.debug({ err }, 'TLS handshake failed');
    });
    return server as unknown as ClientServer;
  }
}

/** Envoy's premature-reset guard, with its numbers: past 500 streams, half reset early = abuse. */
const RESET_FLOOD_MIN_STREAMS = 500;
const PREMATURE_RESET_MS = 1_000;

const resetFloodsTotal = counter(
  'switchboard_proxy_http2_reset_floods_total',
  'HTTP/2 connections closed with ENHANCE_YOUR_CALM because the client reset most of its streams before their response (the "rapid reset" attack, CVE-2023-44487)',
);

/**
 * "Rapid reset" (CVE-2023-44487): a client opens streams and cancels each at once. Every
 * stream still costs us routing and an upstream request, and the concurrent-streams limit
 * does not bound it (a reset stream no longer counts). node's own limits end some floods;
 * this ends every one: a session whose streams are mostly reset by the client within a
 * second of opening, once it has opened 500, gets GOAWAY(ENHANCE_YOUR_CALM) and is closed.
 */
function guardResetFlood(session: http2.ServerHttp2Session, logger: Logger): void {
  let streams = 0;
  let premature = 0;
  session.on('stream', (stream: http2.ServerHttp2Stream) => {
    streams++;
    const openedAt = performance.now();
    stream.once('close', () => {
      if (stream.rstCode === http2.constants.NGHTTP2_NO_ERROR || stream.headersSent || performance.now() - openedAt > PREMATURE_RESET_MS) return;
      premature++;
      if (streams < RESET_FLOOD_MIN_STREAMS || premature * 2 < streams || session.destroyed) return;
      resetFloodsTotal.inc();
      logger.warn({ peer: session.socket?.remoteAddress, streams, premature }, 'HTTP/2 client reset most of its streams at once (rapid reset): connection closed');
      session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      session.destroy();
    });
  });
}

function listenOn(server: NetServer, options: ListenOptions, listen: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(
        err.code === 'EADDRINUSE'
          ? new SwitchboardError('address_in_use', `cannot listen on ${listen}: address already in use`, { cause: err })
          : err,
      );
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options);
  });
}

function boundAddress(server: NetServer): string | undefined {
  const bound = server.address() as AddressInfo | null;
  if (!bound) return undefined;
  return bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
}

function httpsPort(server: NetServer): number {
  return (server.address() as AddressInfo | null)?.port ?? 443;
}

/**
 * 308 (method and body kept) to the same host and target over https. The host comes from
 * the request, so it is checked: anything outside the hostname grammar gets 400 rather than
 * a redirect to wherever the client's Host pointed.
 */
function redirectToHttps(req: http.IncomingMessage, res: http.ServerResponse, port: number): void {
  const hostHeader = req.headers.host ?? '';
  const host = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?$/.exec(hostHeader)?.[1];
  const target = req.url ?? '/';
  if (host === undefined || !target.startsWith('/')) {
    res.writeHead(400, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
    res.end(JSON.stringify({ error: 'bad_request', message: 'a redirect to https needs a valid Host and an origin-form target' }));
    return;
  }
  const location = `https://${host}${port === 443 ? '' : `:${port}`}${target}`;
  res.writeHead(308, { location, 'content-length': '0' });
  res.end();
}
