import type { ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import type { ProxyReport, ServiceReport } from '../bus/proxy-report';
import type { ReportChannel } from '../bus/report-channel';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Bus } from '../bus/bus';
import type { Instance } from '../catalog/model';
import type { CatalogSource } from '../catalog/source';
import type { ConnectionOptions } from 'node:tls';
import { Notifier } from '../notify/notifier';
import { clientTlsOptions } from '../tls/client-tls';
import { AccessLog } from './access-log/access-log';
import type { NotifyConfig } from '../notify/events';
import type { ProxyConfig, ReloadReport, ServicePolicy } from '../config/types';
import { SwitchboardError } from '../errors';
import type { Logger } from '../log';
import { counter } from '../metrics';
import { CatalogCache, type CatalogUpdate } from './cache';
import { Exchange, type DispatchContext } from './forward/dispatch';
import { internalError } from './forward/attempt';
import { TrustedProxies, readRequestHead, type RequestHead, type RequestHeadOptions } from './forward/request-head';
import type { TransportOptions } from './forward/transport';
import { writeOverloaded } from './overload';
import { ProxyMetrics } from './proxy-metrics';
import { ProxyListener } from './listener';
import { CLIENT_CLOSED, isHttp2, type ProxyRequest, sendError, writeRawError } from './respond';
import { Router, type Route } from './router';
import { Service, type UpstreamState } from './service';
import { TunnelForwarder, isWebSocketUpgrade, type Tunnel, type TunnelContext } from './websocket';

const internalErrorsTotal = counter(
  'switchboard_proxy_internal_errors_total',
  'Requests failed with 500 internal_error: an exception of ours while handling one request (a bug; see the log by request id).',
  ['service'],
);

export interface ProxyOptions {
  config: ProxyConfig;
  /** Host suffix: `users.<domain>` routes to service `users`. */
  domain: string;
  source: CatalogSource;
  bus: Bus;
  logger: Logger;
  /** Webhooks told of this proxy's ejections (notify.webhooks); none when absent. */
  notify?: NotifyConfig;
  /** Where this proxy's runtime report goes every second (the registry's web UI); none when absent. */
  reports?: ReportChannel;
}

/** How often a proxy reports its runtime view. */
export const REPORT_INTERVAL_MS = 1000;

export interface ServiceState {
  inPanic: boolean;
  /** Requests holding a concurrency slot, and requests queued for one. */
  active: number;
  pending: number;
  upstreams: UpstreamState[];
}

/**
 * The data plane. State flows one way (catalog cache → router + services); a request goes
 * route → limit → pick → forward → account (exchange.ts), and errors the proxy makes itself
 * are JSON with a stable code.
 */
export class ProxyServer {
  private config: ProxyConfig;
  private readonly logger: Logger;
  private router: Router;
  private domain: string;
  private readonly catalog: CatalogCache;
  private readonly exchanges: DispatchContext;
  private readonly tunnels: TunnelForwarder;
  private heads: RequestHeadOptions;
  /** Loaded upstreamTls settings, by their JSON (see upstreamTls). */
  private tlsOptions = new Map<string, ConnectionOptions>();
  private transport: TransportOptions;
  private readonly metrics = new ProxyMetrics();
  private readonly services = new Map<string, Service>();
  private readonly listener: ProxyListener;
  /** Forwarded HTTP requests not finished yet (WebSocket tunnels are not counted). */
  private inFlight = 0;
  /** One line per answered request (proxy.accessLog); none when off. */
  private accessLog: AccessLog | undefined;
  /** Sends this proxy's ejections to the webhooks that want them. */
  private notifier: Notifier | undefined;
  private onDrained: (() => void) | undefined;
  private readonly reports: ReportChannel | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private reportedAt = 0;
  private stopping: Promise<void> | undefined;
  private closing = false;

  constructor(options: ProxyOptions) {
    this.config = options.config;
    this.logger = options.logger.child({ component: 'proxy' });
    this.domain = options.domain;
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
      resyncIntervalMs: options.config.resyncInterval,
    });
    this.catalog.onUpdate((update) => this.applyCatalog(update));
    this.transport = transportOf(options.config);
    this.heads = headOptionsOf(options.config);
    this.checkUpstreamTls(options.config);
    // Read per request, so a reload's timeouts apply to the next request.
    const self = (): ProxyServer => this;
    this.exchanges = {
      get responseMs() {
        return self().config.timeouts.response;
      },
      logger: this.logger,
      get closing() {
        return self().closing;
      },
      complete: (exchange) => this.completeExchange(exchange),
      internalError: (err, requestId, service) => this.internalError(err, requestId, service),
    };
    const tunnelContext: TunnelContext = {
      get connectMs() {
        return self().config.timeouts.connect;
      },
      get responseMs() {
        return self().config.timeouts.response;
      },
      logger: this.logger,
      complete: (t) => this.completeTunnel(t),
    };
    this.tunnels = new TunnelForwarder(tunnelContext);
    this.listener = new ProxyListener(options.config, this.logger);
    const server = this.listener.server;
    this.accessLog = options.config.accessLog.enabled ? new AccessLog(options.config.accessLog) : undefined;
    this.notifier = ejectionNotifier(options.notify, this.logger);
    this.reports = options.reports;
    server.on('request', (req: ProxyRequest, res: ServerResponse) => this.handleRequest(req, res));
    // Expect: 100-continue is answered only once the request is routed and admitted (dispatch.ts).
    server.on('checkContinue', (req: ProxyRequest, res: ServerResponse) => this.handleRequest(req, res));
    server.on('upgrade', (req: ProxyRequest, socket: Duplex, head: Buffer) => this.handleUpgrade(req, socket, head));
    server.on('connect', (req: ProxyRequest, socketOrResponse: Duplex | ServerResponse) => {
      const error = new SwitchboardError('bad_request', 'CONNECT is not served: this is a reverse proxy, not a forward proxy');
      // HTTP/1.1 hands over the socket; HTTP/2 a response on the CONNECT stream.
      if (isHttp2(req)) sendError(socketOrResponse as ServerResponse, error);
      else writeRawError(socketOrResponse as Duplex, error);
    });
  }

  get cache(): CatalogCache {
    return this.catalog;
  }

  isReady(): boolean {
    return this.catalog.ready;
  }

  /** `host:port` actually bound (the port is real even when the config asked for 0). */
  get address(): string {
    return this.listener.address;
  }

  /** The plain-HTTP redirect listener's address (proxy.tls.redirectListen), if one runs. */
  get redirectAddress(): string | undefined {
    return this.listener.redirectAddress;
  }

  /** Services whose pool has been made (used, or probed actively): the rest are router entries only. */
  servicesInUse(): string[] {
    return [...this.services.keys()].sort();
  }

  /** What this proxy thinks of a service (admin, tests); undefined if unknown. */
  serviceState(name: string): ServiceState | undefined {
    const service = this.services.get(name) ?? this.firstUse(name);
    if (!service) return undefined;
    const { active, pending } = service.limiter;
    return { inPanic: service.inPanic, active, pending, upstreams: service.states() };
  }

  async start(): Promise<void> {
    await this.listener.listen();
    // After listening: accept errors (EMFILE…) must be logged, never crash the process.
    this.listener.server.on('error', (err) => this.logger.error({ err }, 'proxy server error'));
    this.catalog.start();
    if (this.reports !== undefined) {
      const reports = this.reports;
      this.reportedAt = performance.now();
      this.reportTimer = setInterval(() => {
        try {
          reports.publish(this.report());
        } catch (err) {
          this.logger.warn({ err }, 'runtime report not sent');
        }
      }, REPORT_INTERVAL_MS).unref();
    }
    this.logger.info({ address: this.address, tls: this.listener.secure, redirect: this.redirectAddress }, 'proxy listening');
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to `drainMs` (responses ask
   * clients to close), then cuts what is left and closes upstream connections.
   */
  stop(drainMs: number = this.config.drain): Promise<void> {
    this.stopping ??= this.shutdown(drainMs);
    return this.stopping;
  }

  /** This proxy's runtime view (bus/proxy-report.ts), closing the traffic windows. */
  report(): ProxyReport {
    const now = performance.now();
    const elapsed = now - this.reportedAt;
    this.reportedAt = now;
    const services: Record<string, ServiceReport> = {};
    for (const [name, service] of this.services) {
      const report = service.report(elapsed);
      if (report !== undefined) services[name] = report;
    }
    return {
      proxy: `${hostname()}/${this.address}/${process.pid}`,
      address: this.address,
      pid: process.pid,
      rev: this.catalog.rev,
      ...(this.catalog.lastResync !== undefined ? { lastResync: this.catalog.lastResync } : {}),
      at: Date.now(),
      routes: this.config.routes.map((r) => ({ service: r.service, ...(r.host !== undefined ? { host: r.host } : {}), ...(r.prefix !== undefined ? { prefix: r.prefix } : {}) })),
      services,
    };
  }

  private async shutdown(drainMs: number): Promise<void> {
    clearInterval(this.reportTimer);
    this.catalog.stop();
    this.closing = true;
    const closed = this.listener.close();
    this.listener.closeIdleConnections();
    await this.drained(drainMs);
    this.listener.closeAllConnections();
    this.tunnels.close();
    await Promise.all([...this.services.values()].map((s) => s.destroy()));
    this.notifier?.close();
    await closed;
    await this.accessLog?.close();
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

  // ---- the per-request path -------------------------------------------------------------

  /** Nothing thrown while handling one request may reach the process: it fails that request. */
  private handleRequest(req: ProxyRequest, res: ServerResponse): void {
    const startedAt = performance.now();
    this.accessLog?.begin(req, res);
    try {
      this.serve(req, res, startedAt);
    } catch (err) {
      this.handleRequestFailure(req, res, err, startedAt);
    }
  }

  /** read the head → route → limit → dispatch (forward/dispatch.ts) */
  private serve(req: ProxyRequest, res: ServerResponse, startedAt: number): void {
    const head = readRequestHead(req, this.heads);
    if (head instanceof SwitchboardError) {
      this.refuseHead(req, res, head, startedAt);
      return;
    }
    req.requestId = head.requestId;
    if (this.closing) res.shouldKeepAlive = false;
    const route = this.router.route(head.host, head.target);
    const service = this.serviceFor(route);
    if (service === undefined) {
      this.refuse(res, head, UNKNOWN_SERVICE, unknownService(route), startedAt);
      return;
    }
    const limiter = service.limiter;
    const slot = limiter.saturated ? limiter.acquire(abortWhenClosed(res)) : limiter.acquire();
    if (slot === true) this.forward(req, res, service, head, (route as Route).path, startedAt);
    else if (slot === false) this.overloaded(res, head, service, startedAt);
    else this.awaitSlot(slot, req, res, service, head, (route as Route).path, startedAt);
  }

  private forward(req: ProxyRequest, res: ServerResponse, service: Service, head: RequestHead, path: string, startedAt: number): void {
    this.inFlight++;
    new Exchange(this.exchanges, req, res, service, head, path, startedAt).start();
  }

  /** Queued behind the concurrency limit (maxPending > 0): the only path with a promise. */
  private awaitSlot(slot: Promise<boolean>, req: ProxyRequest, res: ServerResponse, service: Service, head: RequestHead, path: string, startedAt: number): void {
    void slot.then((granted) => {
      try {
        const clientGone = res.destroyed || req.socket.destroyed;
        if (granted && !clientGone) return this.forward(req, res, service, head, path, startedAt);
        if (granted) service.limiter.release();
        if (!clientGone) return this.overloaded(res, head, service, startedAt);
        this.metrics.record(service.name, CLIENT_CLOSED, startedAt);
        this.accessLog?.answered({ req, res, startedAt, status: CLIENT_CLOSED, service, upstream: '', tries: 0, error: undefined });
      } catch (err) {
        this.handleRequestFailure(req, res, err, startedAt);
      }
    });
  }

  /** Our exception while handling a request: that request fails (500 internal_error), nothing else. */
  private handleRequestFailure(req: ProxyRequest, res: ServerResponse, err: unknown, startedAt: number): void {
    const exchange = req.exchange;
    if (exchange !== undefined) return exchange.crash(err);
    this.internalError(err, req.requestId, UNKNOWN_SERVICE);
    this.accessLog?.track(res, startedAt);
    try {
      sendError(res, internalError(err));
    } catch {
      res.destroy();
    }
  }

  private overloaded(res: ServerResponse, head: RequestHead, service: Service, startedAt: number): void {
    // A client waiting for 100 Continue must not send its body to a refused request.
    if (head.expectContinue) res.shouldKeepAlive = false;
    this.accessLog?.track(res, startedAt, service.name);
    writeOverloaded(res, `service "${service.name}" is at its concurrency limit`);
    this.metrics.record(service.name, 503, startedAt);
  }

  private refuse(res: ServerResponse, head: RequestHead, label: string, error: SwitchboardError, startedAt: number): void {
    if (head.expectContinue) res.shouldKeepAlive = false;
    this.accessLog?.track(res, startedAt);
    sendError(res, error);
    this.metrics.record(label, error.status, startedAt);
  }

  /**
   * A head we will not route. Past the header cap node may have dropped a line that frames
   * the body, so that connection is closed; after a bad Host or target it stays usable.
   */
  private refuseHead(req: ProxyRequest, res: ServerResponse, error: SwitchboardError, startedAt: number): void {
    if (error.code === 'too_many_headers') res.shouldKeepAlive = false;
    this.accessLog?.track(res, startedAt);
    sendError(res, error);
    this.metrics.record(UNKNOWN_SERVICE, error.status, startedAt);
    if (this.logger.isLevelEnabled('debug')) this.logger.debug({ err: error, peer: req.socket.remoteAddress }, 'request refused');
  }

  private internalError(err: unknown, requestId: string, service: string): void {
    internalErrorsTotal.inc({ service });
    this.logger.error({ err, requestId, service }, 'internal error while handling a request: it failed, the proxy goes on');
  }

  private completeExchange(exchange: Exchange): void {
    const name = exchange.service.name;
    this.metrics.record(name, exchange.status, exchange.startedAt);
    if (exchange.error !== undefined) this.metrics.upstreamError(name, exchange.error);
    this.inFlight--;
    if (this.inFlight === 0) this.onDrained?.();
    // Last: the bookkeeping above must happen whatever the log does.
    this.accessLog?.answered(exchange);
  }

  private handleUpgrade(req: ProxyRequest, socket: Duplex, head: Buffer): void {
    try {
      this.serveUpgrade(req, socket, head);
    } catch (err) {
      this.internalError(err, req.requestId, UNKNOWN_SERVICE);
      writeRawError(socket, internalError(err));
    }
  }

  private serveUpgrade(req: ProxyRequest, socket: Duplex, head: Buffer): void {
    const startedAt = performance.now();
    const requestHead = readRequestHead(req, this.heads);
    const refused =
      requestHead instanceof SwitchboardError
        ? requestHead
        : isWebSocketUpgrade(req)
          ? undefined
          : new SwitchboardError('bad_request', 'only WebSocket upgrades are supported');
    if (refused !== undefined) {
      writeRawError(socket, refused);
      this.metrics.record(UNKNOWN_SERVICE, refused.status, startedAt);
      return;
    }
    const { host, target } = requestHead as RequestHead;
    req.requestId = (requestHead as RequestHead).requestId;
    const route = this.router.route(host, target);
    const service = this.serviceFor(route);
    const upstream = service?.pick(req);
    if (service === undefined || upstream === undefined) {
      const error = service === undefined ? unknownService(route) : noHealthyUpstream(service.name);
      writeRawError(socket, error);
      this.metrics.record(service?.name ?? UNKNOWN_SERVICE, error.status, startedAt);
      return;
    }
    req.url = (route as Route).path;
    this.tunnels.forward(req, socket, head, upstream, service, startedAt, requestHead as RequestHead);
  }

  private completeTunnel(tunnel: Tunnel): void {
    this.metrics.record(tunnel.service.name, tunnel.status, tunnel.startedAt);
    if (tunnel.error !== undefined) this.metrics.upstreamError(tunnel.service.name, tunnel.error);
  }

  private serviceFor(route: Route | undefined): Service | undefined {
    if (route === undefined) return undefined;
    const service = this.services.get(route.service) ?? this.firstUse(route.service);
    return service !== undefined && service.exists ? service : undefined;
  }

  /** A service the catalog lists but nobody asked for yet: made now (see applyCatalog). */
  private firstUse(name: string): Service | undefined {
    const instances = this.catalog.instances(name);
    if (instances === undefined || instances.length === 0) return undefined;
    return this.makeService(name, instances);
  }

  /** The service's pool, balancer, detector and limiter, made and given its instances. */
  private makeService(name: string, instances: readonly Instance[]): Service | undefined {
    const service = this.serviceNamed(name);
    service?.update(instances);
    return service;
  }

  // ---- catalog → services ---------------------------------------------------------------

  /**
   * A service's pool, balancer, detector and limiter are made on its first request (or now,
   * when its policy probes instances actively: probes run whether or not traffic comes). A
   * catalog of 10,000 services costs the router entries and nothing more until they are used.
   */
  private applyCatalog(update: CatalogUpdate): void {
    for (const [name, instances] of update.services) {
      if (instances.length === 0) {
        this.router.removeService(name);
        void this.services.get(name)?.retire();
        this.services.delete(name);
        continue;
      }
      this.router.setService(name, tagsOf(instances));
      const existing = this.services.get(name);
      if (existing !== undefined) existing.update(instances);
      else if (this.probesActively(name)) this.makeService(name, instances);
    }
    if (this.logger.isLevelEnabled('debug')) {
      this.logger.debug({ rev: update.rev, services: [...update.services.keys()] }, 'catalog applied');
    }
  }

  private readonly onEjected = (service: string, instance: Instance, reason: string): void => {
    void this.notifier?.notify({
      event: 'instance-ejected',
      time: new Date().toISOString(),
      service,
      instance: { id: instance.id, address: instance.address, port: instance.port, tags: [...instance.tags] },
      proxy: this.address,
      reason,
    });
  };

  /**
   * A reload: the new configuration applies to the next request — routes, service policies
   * (a service whose policy or timeouts changed gets a new pool; requests in flight finish on
   * the old one, which then drains), timeouts, client limits, trusted proxies, the access log
   * and ejection notifications. What cannot change while listening (the listen address, the
   * registry URLs, workers) is returned as restart-required and left as it was.
   */
  reconfigure(next: ProxyConfig, domain: string, notify?: NotifyConfig): ReloadReport {
    const before = this.config;
    const changed = (key: keyof ProxyConfig): boolean => JSON.stringify(before[key]) !== JSON.stringify(next[key]);
    const restartRequired = (['listen', 'registry', 'workers', 'workerSockets', 'resyncInterval'] as const).filter(changed).map((k) => `proxy.${k}`);
    const kept = { listen: before.listen, registry: before.registry, workers: before.workers, workerSockets: before.workerSockets, resyncInterval: before.resyncInterval };
    const tls = this.listener.reconfigureTls(next.tls);
    restartRequired.push(...tls.restartRequired);
    this.config = { ...next, ...kept, tls: tls.kept };
    const applied: string[] = [...tls.applied];
    const failed: string[] = [...tls.failed];
    if (changed('routes') || changed('pathRouting') || changed('stripServicePrefix') || domain !== this.domain) {
      this.domain = domain;
      this.router = new Router({ domain, routes: next.routes, pathRouting: next.pathRouting, stripServicePrefix: next.stripServicePrefix });
      for (const [name, instances] of this.catalog.services()) if (instances.length > 0) this.router.setService(name, tagsOf(instances));
      applied.push('proxy.routes');
    }
    if (changed('trustedProxies') || changed('maxRequestHeaders')) {
      this.heads = headOptionsOf(next);
      applied.push('proxy.trustedProxies', 'proxy.maxRequestHeaders');
    }
    if (changed('clientTimeouts') || changed('maxRequestHeaders')) {
      this.listener.applyLimits(next.clientTimeouts, next.maxRequestHeaders);
      applied.push('proxy.clientTimeouts');
    }
    try {
      this.checkUpstreamTls(next);
    } catch (err) {
      failed.push(`${(err as SwitchboardError).message} (services keep their TLS settings)`);
    }
    const timeoutsChanged = changed('timeouts');
    if (timeoutsChanged) {
      this.transport = transportOf(next);
      applied.push('proxy.timeouts');
    }
    if (changed('defaults') || changed('services') || timeoutsChanged) this.renewServices(timeoutsChanged, applied);
    if (changed('accessLog')) {
      void this.accessLog?.close();
      this.accessLog = next.accessLog.enabled ? new AccessLog(next.accessLog) : undefined;
      applied.push('proxy.accessLog');
    }
    if (notify !== undefined) {
      this.notifier?.close();
      this.notifier = ejectionNotifier(notify, this.logger);
    }
    return { applied, restartRequired, failed };
  }

  /** Services whose policy (or the timeouts) changed get a new Service; the old one drains. */
  private renewServices(timeoutsChanged: boolean, applied: string[]): void {
    for (const [name, old] of [...this.services]) {
      const policy = this.policyFor(name);
      if (!timeoutsChanged && JSON.stringify(policy) === JSON.stringify(old.policy)) continue;
      this.services.delete(name);
      const renewed = this.serviceNamed(name);
      if (renewed === undefined) {
        // An invalid policy for this one service: keep serving it as before.
        this.services.set(name, old);
        continue;
      }
      // Retired before the new one reports (its per-service gauges must end up the new one's).
      void old.retire();
      renewed.update(this.catalog.instances(name) ?? []);
      applied.push(`proxy.services.${name}`);
    }
    // A policy that now probes actively needs its service made, used or not.
    for (const [name, instances] of this.catalog.services()) {
      if (instances.length === 0 || this.services.has(name) || !this.probesActively(name)) continue;
      this.makeService(name, instances);
      applied.push(`proxy.services.${name}`);
    }
  }

  /** A bad policy disables that one service (logged); the others keep working. */
  private serviceNamed(name: string): Service | undefined {
    let service = this.services.get(name);
    if (service) return service;
    try {
      const policy = this.policyFor(name);
      const transport = { ...this.transport, tls: this.upstreamTls(policy, name) };
      service = new Service(name, policy, { transport, logger: this.logger, onEjected: this.onEjected });
    } catch (err) {
      this.logger.error({ err, service: name }, 'invalid service policy: service disabled');
      return undefined;
    }
    this.services.set(name, service);
    return service;
  }

  /**
   * TLS options for a policy's upstreamTls, files read once per distinct setting (10,000
   * services sharing `defaults` read its CA file once). Throws config_invalid.
   */
  private upstreamTls(policy: Readonly<ServicePolicy>, name: string): ConnectionOptions {
    const key = JSON.stringify(policy.upstreamTls);
    let options = this.tlsOptions.get(key);
    if (options === undefined) {
      const { caFile, certFile, keyFile, serverName, skipVerify } = policy.upstreamTls;
      const field = Object.prototype.hasOwnProperty.call(this.config.services, name) ? `proxy.services.${name}.upstreamTls` : 'proxy.defaults.upstreamTls';
      options = clientTlsOptions({ caFile: caFile || undefined, certFile: certFile || undefined, keyFile: keyFile || undefined, serverName: serverName || undefined, skipVerify }, field);
      this.tlsOptions.set(key, options);
    }
    return options;
  }

  /** Every configured upstreamTls loads (at startup: a configuration error; at reload: reported). */
  private checkUpstreamTls(config: ProxyConfig): void {
    const previous = this.tlsOptions;
    this.tlsOptions = new Map();
    try {
      this.upstreamTls(config.defaults, '');
      for (const [name, policy] of Object.entries(config.services)) this.upstreamTls(policy, name);
    } catch (err) {
      this.tlsOptions = previous;
      throw err;
    }
  }

  /** Such a service is made as soon as the catalog lists it, not on first use: probes run with or without traffic. */
  private probesActively(name: string): boolean {
    return this.policyFor(name).healthCheck.enabled;
  }

  private policyFor(name: string): Readonly<ServicePolicy> {
    const services = this.config.services;
    if (Object.prototype.hasOwnProperty.call(services, name)) return services[name];
    return this.config.defaults;
  }
}

/** Only made when a request has to queue: its wait ends if the client leaves. */
function abortWhenClosed(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => controller.abort());
  return controller.signal;
}

/** The label for requests that match no service: keeps the label set bounded. */
const UNKNOWN_SERVICE = '_unknown';

function unknownService(route: Route | undefined): SwitchboardError {
  return route === undefined
    ? new SwitchboardError('unknown_service', 'no service matches this host and path')
    : new SwitchboardError('unknown_service', `service "${route.service}" has no instances`);
}

function noHealthyUpstream(service: string): SwitchboardError {
  return new SwitchboardError('no_healthy_upstream', `service "${service}" has no healthy instance`);
}

function tagsOf(instances: readonly Instance[]): string[] {
  const tags = new Set<string>();
  for (const instance of instances) for (const tag of instance.tags) tags.add(tag);
  return [...tags];
}

/** How connections to upstreams behave, from the proxy's timeouts. */
function transportOf(config: ProxyConfig): TransportOptions {
  const { connect: connectMs, response: responseMs, idle: idleMs } = config.timeouts;
  // A response body may pause for as long as a response may take to start.
  return { connectMs, idleMs, bodyIdleMs: responseMs };
}

function headOptionsOf(config: ProxyConfig): RequestHeadOptions {
  const trusted = config.trustedProxies;
  return { maxHeaders: config.maxRequestHeaders, trustedProxies: trusted.length > 0 ? new TrustedProxies(trusted) : undefined };
}

/** A Notifier only when some webhook wants this proxy's ejections. */
function ejectionNotifier(notify: NotifyConfig | undefined, logger: Logger): Notifier | undefined {
  const notifier = notify !== undefined ? new Notifier(notify, logger) : undefined;
  if (notifier?.listensTo('instance-ejected')) return notifier;
  notifier?.close();
  return undefined;
}
