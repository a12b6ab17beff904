import type { AddressInfo } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import type { Bus } from '../bus/bus';
import { LocalSource } from '../catalog/local-source';
import type { CatalogSource } from '../catalog/source';
import type { SwitchboardConfig } from '../config/types';
import { SwitchboardError } from '../errors';
import type { Logger } from '../log';
import { listenTarget, parseListen } from '../config/schema';
import { buildApi } from './api/server';
import type { ConsulNode } from './api/consul-json';
import { AclStore } from './acl/acl-store';
import { HttpCheck } from './checks/http-check';
import { ScriptCheck } from './checks/script-check';
import { TargetPolicy } from './targets';
import { CatalogView } from './catalog-view';
import { CatalogWriter } from './catalog-writer';
import { CheckRunner } from './checks/check-runner';
import { TtlExpiryLoop } from './checks/ttl-expiry';
import type { Election } from './election/election';
import { LocalElection } from './election/local-election';
import { Publisher } from './publisher';
import { realScheduler, type Scheduler } from '../clock';
import { HealthNotifier } from './health-notifier';
import { Notifier } from '../notify/notifier';
import type { Store } from './store/store';
import { ServerCertificates, reloadOnRequest, serveCertificates, servesTls, type CertificateReloader } from '../tls/server-certificates';
import { KvWriter } from './kv/kv-writer';
import type { ReportChannel } from '../bus/report-channel';
import { followCatalog } from './ui/catalog-events';
import { EventLog } from './ui/event-log';
import { RuntimeView } from './ui/runtime-view';

export { buildApi } from './api/server';

/** What a Registry reads of the configuration. */
export type RegistrySettings = Pick<SwitchboardConfig, 'api' | 'registry' | 'acl' | 'domain' | 'datacenter' | 'nodeName'> & Partial<Pick<SwitchboardConfig, 'notify'>>;

export interface RegistryOptions {
  /** Already open; the registry never closes it. */
  store: Store;
  bus: Bus;
  logger: Logger;
  /**
   * Its slice of the configuration: the API (listen, limits, protected mode), targets and
   * check limits (registry.*), ACLs, and the proxy's Host suffix (`<name>.<domain>` may be
   * claimed by that service only).
   */
  config: RegistrySettings;
  /** Bound host:port of this process's other listeners (proxy, admin): no one may target them. */
  otherListeners?: () => readonly string[];
  /** Defaults to LocalElection (this process always leads). The registry starts and stops it. */
  election?: Election;
  /** host:port other processes should use for this API; defaults to the bound address. */
  advertise?: string;
  /** Wall clock and timers of check deadlines (TTL expiry); a fake one in tests. */
  scheduler?: Scheduler;
  /** False while the store is unreachable: reads say so (X-Consul-KnownLeader: false). */
  storeHealthy?: () => boolean;
  /** Where proxies' runtime reports arrive (the web UI); without it the UI shows the catalog only. */
  reports?: ReportChannel;
}

/**
 * The registry role: a catalog view following the store, the Consul-compatible API over it,
 * and, while leading, the TTL expiry loop, the HTTP/TCP check runner and the publisher.
 */
export class Registry {
  private readonly log: Logger;
  private readonly catalogView: CatalogView;
  private readonly writer: CatalogWriter;
  private readonly election: Election;
  private readonly publisher: Publisher;
  private readonly ttlLoop: TtlExpiryLoop;
  private readonly checkRunner: CheckRunner;
  /** Leader-only health notifications; none without webhooks. */
  private readonly healthNotifier: HealthNotifier | undefined;
  private app?: FastifyInstance;
  /** The web UI's timeline, and what the proxies report. */
  private readonly events = new EventLog();
  private readonly runtime = new RuntimeView(this.events);
  private readonly stopFollowing: Array<() => void> = [];
  /** api.tls: the certificates served (config_invalid at construction when a file is bad). */
  private readonly certificates: ServerCertificates | undefined;
  private reloadTls: CertificateReloader | undefined;
  private readonly acl: AclStore | undefined;
  private bound = '';
  private stopping?: Promise<void>;

  constructor(private readonly options: RegistryOptions) {
    const { store, bus, logger } = options;
    const scheduler = options.scheduler ?? realScheduler;
    const now = (): number => scheduler.now();
    this.log = logger.child({ component: 'registry' });
    const tls = options.config.api.tls;
    this.certificates = servesTls(tls) ? new ServerCertificates(tls, 'api.tls') : undefined;
    this.catalogView = new CatalogView(store, { logger });
    this.election = options.election ?? new LocalElection(() => this.options.advertise ?? this.bound);
    this.writer = new CatalogWriter({ store, view: this.catalogView, now, election: this.election });
    this.publisher = new Publisher({ store, bus, election: this.election, logger });
    this.ttlLoop = new TtlExpiryLoop({ view: this.catalogView, writer: this.writer, election: this.election, logger, scheduler });
    const aclConfig = options.config.acl;
    this.acl = aclConfig.enabled
      ? new AclStore(
          store,
          { defaultPolicy: aclConfig.defaultPolicy, initialManagement: aclConfig.tokens.initialManagement, policies: aclConfig.policies, staticTokens: aclConfig.staticTokens },
          logger.child({ component: 'acl' }),
        )
      : undefined;
    this.checkRunner = new CheckRunner({
      view: this.catalogView,
      writer: this.writer,
      election: this.election,
      logger,
      checks: {
        http: new HttpCheck({ outputExcerpt: options.config.registry.checkOutputExcerpt }),
        script: new ScriptCheck({ maxConcurrent: options.config.registry.scriptConcurrency }),
      },
    });
    const notify = options.config.notify;
    this.healthNotifier =
      notify !== undefined && notify.webhooks.length > 0
        ? new HealthNotifier({
            view: this.catalogView,
            store,
            election: this.election,
            notifier: new Notifier(notify, logger),
            holdDownMs: notify.holdDown,
            self: () => options.advertise ?? this.bound,
            logger,
          })
        : undefined;
  }

  /** Reads the catalog, listens on api.listen, then campaigns and starts the leader loops. */
  async start(): Promise<void> {
    try {
      await this.catalogView.start();
      await this.acl?.start();
      const app = buildApi(
        {
        view: this.catalogView,
        writer: this.writer,
        kvWriter: new KvWriter(this.options.store, this.catalogView.kv),
        election: this.election,
        logger: this.options.logger,
        node: this.consulNode(),
        maxWaitMs: this.options.config.api.maxWait,
        storeHealthy: this.options.storeHealthy,
        domain: this.options.config.domain,
        minCheckIntervalMs: this.options.config.registry.minCheckInterval,
        scriptChecks: this.options.config.registry.enableScriptChecks,
        targets: new TargetPolicy(this.options.config.registry, () => [this.bound, ...(this.options.otherListeners?.() ?? [])].filter((a) => a !== '')),
        clients: this.options.config.api,
        acl: this.acl,
        ui: { runtime: this.runtime, events: this.events, bus: () => this.options.bus.status, storeKind: this.options.store.kind },
        },
        this.certificates,
      );
      this.bound = await listen(app, this.options.config.api.listen);
      this.app = app;
      if (this.certificates !== undefined) this.reloadTls = serveCertificates(app.server as unknown as TlsServer, this.certificates, this.log);
      this.stopFollowing.push(followCatalog(this.catalogView, this.events));
      this.stopFollowing.push(this.election.onChange((leading) => this.events.add({ kind: 'leader', detail: `${this.address} ${leading ? 'leads' : 'no longer leads'}` })));
      if (this.options.reports !== undefined) this.stopFollowing.push(this.options.reports.subscribe((report) => this.runtime.accept(report)));
      await this.election.start();
      this.publisher.start();
      this.ttlLoop.start();
      this.checkRunner.start();
      this.healthNotifier?.start();
      this.log.info({ address: this.bound, store: this.options.store.kind }, 'registry API listening');
      this.log.info(
        { protectedMode: this.options.config.api.protectedMode, acl: this.acl !== undefined },
        this.acl !== undefined
          ? `ACLs on (default policy ${this.options.config.acl.defaultPolicy}): every request is judged by its token`
          : this.options.config.api.protectedMode
          ? 'protected mode: writes are accepted from loopback clients only (api.protectedMode)'
          : 'protected mode off: any client that reaches the API may register and deregister; keep the API on a private network',
      );
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** The catalog's Consul node: named by config, at this registry's API host. */
  private consulNode(): ConsulNode {
    const { nodeName, datacenter } = this.options.config;
    // Known once bound (port 0 resolves then), so read when asked.
    const address = (): string => {
      const host = parseListen(this.options.advertise ?? this.bound)?.host ?? '';
      return host === '' || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    };
    return {
      name: nodeName,
      datacenter,
      get address(): string {
        return address();
      },
    };
  }

  /** Re-reads api.tls's certificate files (a reload). */
  reloadCertificates(): { reloaded: boolean; error?: string } {
    return reloadOnRequest(this.reloadTls);
  }

  /** The bound API address (host:port); '' before start. */
  get address(): string {
    return this.bound;
  }

  get view(): CatalogView {
    return this.catalogView;
  }

  /** A CatalogSource for a proxy in this process. */
  source(): CatalogSource {
    return new LocalSource(this.catalogView);
  }

  /** Stops the loops and the listener; the store stays open. Safe after a failed start. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    for (const stop of this.stopFollowing.splice(0)) stop();
    this.healthNotifier?.stop();
    await this.checkRunner.stop();
    await this.ttlLoop.stop();
    await this.publisher.stop();
    this.certificates?.close();
    await this.app?.close();
    await this.election.stop();
    this.catalogView.stop();
  }
}

/** Binds `app` to "host:port" (port 0 = any free port) and returns the bound host:port. */
async function listen(app: FastifyInstance, hostPort: string): Promise<string> {
  const { host, port } = listenTarget(hostPort, 'api.listen');
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close().catch(() => undefined);
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new SwitchboardError('address_in_use', `cannot listen on ${hostPort}: address already in use`, { cause: err });
    }
    throw err;
  }
  const address = app.server.address() as AddressInfo;
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}
