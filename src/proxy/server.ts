import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Bus } from '../bus/bus';
import type { Instance } from '../catalog/model';
import type { CatalogSource } from '../catalog/source';
import { parseListen } from '../config/schema';
import type { ProxyConfig } from '../config/types';
import { SwitchboardError } from '../errors';
import type { Logger } from '../log';
import { counter, histogram } from '../metrics';
import { CatalogCache, type CatalogUpdate } from './cache';
import { Forwarder, ProxyRequest, ensureRequestId, sendError, writeRawError, type Exchange } from './forward';
import { Router, type Route } from './router';
import { Pool, type Upstream } from './upstream';

export interface ProxyOptions {
  config: ProxyConfig;
  /** Host suffix: `users.<domain>` routes to service `users`. */
  domain: string;
  source: CatalogSource;
  bus: Bus;
  logger: Logger;
}

/**
 * The data plane. State flows one way (catalog cache → router + pools); a request goes
 * route → pick → forward → account, and errors the proxy makes itself are JSON with a
 * stable code.
 */
export class Proxy {
  private readonly config: ProxyConfig;
  private readonly logger: Logger;
  private readonly router: Router;
  private readonly catalog: CatalogCache;
  private readonly forwarder: Forwarder;
  private readonly metrics = new ProxyMetrics();
  private readonly pools = new Map<string, Pool>();
  private readonly server: http.Server<typeof ProxyRequest>;
  /** Forwarded HTTP requests not finished yet (WebSocket tunnels are not counted). */
  private inFlight = 0;
  private onDrained: (() => void) | undefined;
  private stopping: Promise<void> | undefined;

  constructor(options: ProxyOptions) {
    this.config = options.config;
    this.logger = options.logger.child({ component: 'proxy' });
    this.router = new Router({
      domain: options.domain,
      routes: options.config.routes,
      pathRouting: options.config.pathRouting,
      stripServicePrefix: options.config.stripServicePrefix,
    });
    this.catalog = new CatalogCache({
      source: options.source,
      bus: options.bus,
      logger: this.logger.child({ component: 'catalog-cache' }),
      resyncIntervalMs: options.config.resyncIntervalMs,
    });
    this.catalog.onUpdate((update) => this.applyCatalog(update));
    this.forwarder = new Forwarder({
      connectMs: options.config.timeouts.connectMs,
      responseMs: options.config.timeouts.responseMs,
      logger: this.logger,
      onComplete: (exchange, status) => this.account(exchange, status),
    });
    this.server = http.createServer({ IncomingMessage: ProxyRequest }, (req, res) => this.handleRequest(req, res));
    this.server.on('upgrade', (req: ProxyRequest, socket: Duplex, head: Buffer) => this.handleUpgrade(req, socket, head));
  }

  get cache(): CatalogCache {
    return this.catalog;
  }

  isReady(): boolean {
    return this.catalog.ready;
  }

  /** `host:port` actually bound (the port is real even when the config asked for 0). */
  get address(): string {
    const bound = this.server.address() as AddressInfo | null;
    if (!bound) return this.config.listen;
    return bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  }

  async start(): Promise<void> {
    const { host, port } = listenAddress(this.config.listen);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.server.off('listening', onListening);
        reject(
          err.code === 'EADDRINUSE'
            ? new SwitchboardError('address_in_use', `cannot listen on ${this.config.listen}: address already in use`, {
                cause: err,
              })
            : err,
        );
      };
      const onListening = (): void => {
        this.server.off('error', onError);
        resolve();
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      this.server.listen(port, host);
    });
    // After listening: accept errors (EMFILE…) must be logged, never crash the process.
    this.server.on('error', (err) => this.logger.error({ err }, 'proxy server error'));
    this.catalog.start();
    this.logger.info({ address: this.address }, 'proxy listening');
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to `drainMs` (responses ask
   * clients to close), then cuts what is left and closes upstream connections.
   */
  stop(drainMs: number = this.config.drainMs): Promise<void> {
    this.stopping ??= this.shutdown(drainMs);
    return this.stopping;
  }

  private async shutdown(drainMs: number): Promise<void> {
    this.catalog.stop();
    this.forwarder.startDraining();
    const closed = new Promise<void>((resolve) => {
      if (this.server.listening) this.server.close(() => resolve());
      else resolve();
    });
    this.server.closeIdleConnections();
    await this.drained(drainMs);
    this.server.closeAllConnections();
    this.forwarder.close();
    for (const pool of this.pools.values()) pool.destroy();
    await closed;
    this.logger.info('proxy stopped');
  }

  private drained(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.onDrained = undefined;
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.onDrained = done;
    });
  }

  private handleRequest(req: ProxyRequest, res: ServerResponse): void {
    const startedAt = performance.now();
    ensureRequestId(req, res);
    if (this.stopping) res.setHeader('connection', 'close');
    const route = this.router.route(req.headers.host, req.url ?? '/');
    const picked = this.pick(route, req);
    if (picked instanceof SwitchboardError) {
      sendError(res, picked);
      this.metrics.record(labelFor(route, picked), picked.status, startedAt);
      return;
    }
    const { service, path } = route as Route;
    req.url = path;
    this.inFlight++;
    this.forwarder.web(req, res, picked, service, startedAt);
  }

  private handleUpgrade(req: ProxyRequest, socket: Duplex, head: Buffer): void {
    const startedAt = performance.now();
    ensureRequestId(req);
    if (req.headers.upgrade?.toLowerCase() !== 'websocket') {
      const error = new SwitchboardError('bad_request', 'only WebSocket upgrades are supported');
      writeRawError(socket, error);
      this.metrics.record(UNKNOWN_SERVICE, error.status, startedAt);
      return;
    }
    const route = this.router.route(req.headers.host, req.url ?? '/');
    const picked = this.pick(route, req);
    if (picked instanceof SwitchboardError) {
      writeRawError(socket, picked);
      this.metrics.record(labelFor(route, picked), picked.status, startedAt);
      return;
    }
    const { service, path } = route as Route;
    req.url = path;
    this.forwarder.ws(req, socket, head, picked, service, startedAt);
  }

  private pick(route: Route | undefined, req: ProxyRequest): Upstream | SwitchboardError {
    if (route === undefined) return NO_ROUTE;
    const pool = this.pools.get(route.service);
    if (pool === undefined || !pool.exists) {
      return new SwitchboardError('unknown_service', `service "${route.service}" has no instances`);
    }
    return (
      pool.pick(req) ??
      new SwitchboardError('no_healthy_upstream', `service "${route.service}" has no healthy instance`)
    );
  }

  private account(exchange: Exchange, status: number): void {
    this.metrics.record(exchange.service, status, exchange.startedAt);
    if (exchange.error !== undefined) this.metrics.upstreamError(exchange.service, exchange.error);
    if (exchange.websocket) return;
    this.inFlight--;
    if (this.inFlight === 0) this.onDrained?.();
  }

  private applyCatalog(update: CatalogUpdate): void {
    for (const [service, instances] of update.services) {
      if (instances.length === 0) {
        this.router.removeService(service);
        this.pools.get(service)?.drain();
        this.pools.delete(service);
        continue;
      }
      this.router.setService(service, tagsOf(instances));
      let pool = this.pools.get(service);
      if (!pool) {
        pool = new Pool(service, { idleMs: this.config.timeouts.idleMs });
        this.pools.set(service, pool);
      }
      pool.update(instances);
    }
    if (this.logger.isLevelEnabled('debug')) {
      this.logger.debug({ rev: update.rev, services: [...update.services.keys()] }, 'catalog applied');
    }
  }
}

/** The label for requests that match no service: keeps the label set bounded. */
const UNKNOWN_SERVICE = '_unknown';
const NO_ROUTE = new SwitchboardError('unknown_service', 'no service matches this host and path');

function labelFor(route: Route | undefined, error: SwitchboardError): string {
  return route === undefined || error.code === 'unknown_service' ? UNKNOWN_SERVICE : route.service;
}

function tagsOf(instances: readonly Instance[]): string[] {
  const tags = new Set<string>();
  for (const instance of instances) for (const tag of instance.tags) tags.add(tag);
  return [...tags];
}

/** Config validation checked the format already; this guards direct construction. */
function listenAddress(listen: string): { host: string; port: number } {
  const parsed = parseListen(listen);
  if (!parsed) {
    throw new SwitchboardError('config_invalid', `listen address "${listen}" must be host:port`, { field: 'proxy.listen' });
  }
  return parsed;
}

const requestsTotal = counter('switchboard_proxy_requests_total', 'Requests answered by the proxy', [
  'service',
  'code_class',
]);
const requestDuration = histogram(
  'switchboard_proxy_request_duration_seconds',
  'Time from receiving a request to the end of its response',
  ['service'],
);
const upstreamErrors = counter('switchboard_proxy_upstream_errors_total', 'Upstream requests that failed', [
  'service',
  'error',
]);

const CODE_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

interface ServiceMeters {
  byClass: Array<{ inc(): void } | undefined>;
  duration: { observe(seconds: number): void };
}

/** prom-client label children cached per service: no label objects built per request. */
class ProxyMetrics {
  private readonly services = new Map<string, ServiceMeters>();

  record(service: string, status: number, startedAt: number): void {
    const meters = this.metersFor(service);
    const index = Math.min(Math.floor(status / 100), 5);
    let requests = meters.byClass[index];
    if (requests === undefined) {
      requests = requestsTotal.labels(service, CODE_CLASSES[index]);
      meters.byClass[index] = requests;
    }
    requests.inc();
    meters.duration.observe((performance.now() - startedAt) / 1000);
  }

  upstreamError(service: string, error: string): void {
    upstreamErrors.inc({ service, error });
  }

  private metersFor(service: string): ServiceMeters {
    let meters = this.services.get(service);
    if (meters === undefined) {
      meters = { byClass: [], duration: requestDuration.labels(service) };
      this.services.set(service, meters);
    }
    return meters;
  }
}
