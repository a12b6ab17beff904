import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ListenerTlsConfig } from '../config/types';
import { ServerCertificates, reloadOnRequest, serveCertificates, servesTls } from '../tls/server-certificates';
import type { Logger } from '../log';
import { collectProcessMetrics, registry as metricsRegistry } from '../metrics';
import { listenTarget } from '../config/schema';
import type { CertificateReload, ReloadOutcome } from './reload';

/**
 * The admin listener every role runs beside its main one: Prometheus metrics and the two
 * probes an orchestrator asks. Kept apart from the data plane so scraping and probing never
 * compete with (or get routed like) proxied traffic.
 */
export interface AdminOptions {
  /** host:port */
  listen: string;
  /** /readyz: true once the role can serve (the proxy: after its first catalog sync). */
  isReady: () => boolean;
  logger: Logger;
  /** Extra read-only JSON endpoints by path (e.g. the proxy's `/catalog`). */
  endpoints?: Record<string, () => unknown>;
  /**
   * The Prometheus text /metrics answers; default: this process's registry. The proxy's
   * primary process (`--workers N`) answers with the sum over its workers instead.
   */
  metrics?: () => Promise<string>;
  /** POST /reload: re-read the configuration (roles that can apply one live). */
  reload?: () => ReloadOutcome | Promise<ReloadOutcome>;
  /** admin.tls: HTTPS when it lists certificates. */
  tls?: ListenerTlsConfig;
}

export interface AdminServer {
  /** host:port actually bound (the real port when asked for port 0). */
  readonly address: string;
  /** Re-reads admin.tls's certificate files (a reload). */
  reloadCertificates: CertificateReload;
  close(): Promise<void>;
}

export async function startAdmin(options: AdminOptions): Promise<AdminServer> {
  collectProcessMetrics();
  const logger = options.logger.child({ component: 'admin' });
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    handle(req, res, options).catch((err: unknown) => {
      logger.error({ err }, 'admin request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal', message: String(err) });
      else res.destroy();
    });
  };
  const certificates = servesTls(options.tls) ? new ServerCertificates(options.tls, 'admin.tls') : undefined;
  const server = certificates !== undefined ? https.createServer(certificates.serverOptions(), onRequest) : http.createServer(onRequest);
  server.keepAliveTimeout = 5_000;
  await listenOn(server, options.listen);
  const reload = certificates !== undefined ? serveCertificates(server as https.Server, certificates, logger) : undefined;
  const bound = server.address() as AddressInfo;
  const address = `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
  return {
    address,
    reloadCertificates: () => reloadOnRequest(reload),
    close: () => {
      certificates?.close();
      return closeServer(server);
    },
  };
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, options: AdminOptions): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/reload' && options.reload !== undefined) {
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return sendJson(res, 405, { error: 'method_not_allowed' });
    }
    req.resume();
    const outcome = await options.reload();
    return sendJson(res, outcome.status === 'reloaded' ? 200 : 400, outcome);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return sendJson(res, 405, { error: 'method_not_allowed' });
  }
  switch (path) {
    case '/metrics': {
      const text = await (options.metrics ?? (() => metricsRegistry.metrics()))();
      res.writeHead(200, { 'Content-Type': metricsRegistry.contentType });
      res.end(text);
      return;
    }
    case '/healthz':
      return sendJson(res, 200, { status: 'ok' });
    case '/readyz':
      return options.isReady() ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { error: 'not_ready' });
    default: {
      const endpoint = options.endpoints && Object.hasOwn(options.endpoints, path) ? options.endpoints[path] : undefined;
      // An endpoint may answer with a promise (the primary asks its workers).
      if (endpoint) return sendJson(res, 200, (await endpoint()) as object);
      return sendJson(res, 404, { error: 'not_found', message: `no admin endpoint ${path}` });
    }
  }
}

function sendJson(res: http.ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Rejects with Node's own error (code EADDRINUSE, EACCES…) so the caller can name the flag. */
function listenOn(server: http.Server, listen: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const target = listenTarget(listen, 'admin.listen');
    server.once('error', reject);
    server.listen(target.port, target.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Scrapers hold keep-alive sockets; they carry nothing worth waiting for.
    server.closeIdleConnections();
  });
}
