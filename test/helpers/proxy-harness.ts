/**
 * A ProxyServer over an in-process fake catalog, for tests of the data plane: set a service's
 * instances, wait until the proxy applied them, send requests through it.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import type { Bus } from '../../src/bus/bus';
import { LocalBus } from '../../src/bus/local-bus';
import { DEFAULT_WEIGHTS, type CatalogDelta, type HealthStatus, type Instance } from '../../src/catalog/model';
import type { CatalogSource } from '../../src/catalog/source';
import { resolveConfig } from '../../src/config/load';
import type { ClientTimeouts, ProxyConfig, ServicePolicy } from '../../src/config/types';
import { silentLogger, type Logger } from '../../src/log';
import { registry } from '../../src/metrics';
import { ProxyServer } from '../../src/proxy/server';
import { waitFor } from './child';

export { waitFor };

/** The registry as the proxy sees it: set a service, the bus announces it. */
export class FakeCatalog implements CatalogSource {
  rev = 0;
  private services: Record<string, Instance[]> = {};

  constructor(private readonly bus: Bus) {}

  async changes(since: number): Promise<CatalogDelta> {
    if (since === this.rev) return { rev: this.rev, full: false, services: {} };
    return { rev: this.rev, full: true, services: structuredClone(this.services) };
  }

  async close(): Promise<void> {}

  async set(service: string, instances: Instance[]): Promise<void> {
    const prevRev = this.rev;
    this.rev++;
    this.services[service] = instances;
    await this.bus.publish({ rev: this.rev, prevRev, services: [service] });
  }
}

export function instance(service: string, id: string, port: number, status: HealthStatus = 'passing', tags: string[] = []): Instance {
  return {
    id,
    service,
    address: '127.0.0.1',
    port,
    tags,
    meta: {},
    weights: { ...DEFAULT_WEIGHTS },
    checks: [{ checkId: `${id}:c`, name: 'c', type: 'ttl', status, output: '', statusSince: 0 }],
    createIndex: 1,
    modifyIndex: 1,
  };
}

/** Any subset of a policy, as a config file would write it; sections merge over the defaults. */
export type PolicyOverrides = {
  [K in keyof ServicePolicy]?: ServicePolicy[K] extends unknown[] ? ServicePolicy[K] : ServicePolicy[K] extends object ? Partial<ServicePolicy[K]> : ServicePolicy[K];
};

/**
 * A complete proxy configuration from the settings a test cares about, through the schema
 * (every default filled in, durations in ms). Anti-entropy is off unless asked for, and the
 * proxy listens on a free loopback port.
 */
export function proxyConfig(settings: Record<string, unknown> = {}): ProxyConfig {
  return resolveConfig({ proxy: { listen: '127.0.0.1:0', resyncInterval: '24h', ...settings } }).proxy;
}

/** A complete service policy: the defaults with `overrides` merged in, section by section. */
export function policy(overrides: PolicyOverrides = {}): ServicePolicy {
  return resolveConfig({ proxy: { services: { s: overrides } } }).proxy.services.s;
}

export interface HarnessOptions {
  services?: Record<string, PolicyOverrides>;
  timeouts?: Partial<Record<keyof ProxyConfig['timeouts'], number | string>>;
  clientTimeouts?: ClientTimeouts;
  logger?: Logger;
  /** Any other proxy settings (trustedProxies, maxRequestHeaders, routes…). */
  config?: Partial<ProxyConfig>;
  /** The `notify` section (webhooks told of this proxy's ejections), as a file would write it. */
  notify?: Record<string, unknown>;
}

export class ProxyHarness {
  readonly bus = new LocalBus();
  readonly catalog = new FakeCatalog(this.bus);
  readonly proxy: ProxyServer;
  /** The configuration it started with (a test reloads it, changed or not). */
  readonly config: ProxyConfig;

  constructor(options: HarnessOptions = {}) {
    const config = proxyConfig({
      stripServicePrefix: false,
      timeouts: { connect: 2_000, response: 10_000, idle: 30_000, ...options.timeouts },
      drain: 2_000,
      services: options.services ?? {},
      ...(options.clientTimeouts ? { clientTimeouts: options.clientTimeouts } : {}),
      ...options.config,
    });
    const notify = options.notify === undefined ? undefined : resolveConfig({ notify: options.notify }).notify;
    this.config = config;
    this.proxy = new ProxyServer({ config, domain: 'svc', source: this.catalog, bus: this.bus, logger: options.logger ?? silentLogger(), notify });
  }

  static async start(options: HarnessOptions = {}): Promise<ProxyHarness> {
    const harness = new ProxyHarness(options);
    await harness.proxy.start();
    await waitFor('the first catalog sync', () => harness.proxy.isReady(), 5_000);
    return harness;
  }

  get address(): { host: string; port: number } {
    const address = this.proxy.address;
    const colon = address.lastIndexOf(':');
    return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
  }

  /** Sets a service's instances and waits until the proxy serves from them. */
  async setService(service: string, instances: Instance[]): Promise<void> {
    await this.catalog.set(service, instances);
    await waitFor(`catalog rev ${this.catalog.rev}`, () => this.proxy.cache.rev === this.catalog.rev, 5_000);
  }

  /** Makes these backends the service's passing instances, with their own ids and ports. */
  serveFrom(service: string, backends: ReadonlyArray<{ id: string; port: number }>): Promise<void> {
    return this.setService(service, backends.map((b) => instance(service, b.id, b.port)));
  }

  upstream(service: string, id: string) {
    const found = this.proxy.serviceState(service)?.upstreams.find((u) => u.id === id);
    if (!found) throw new Error(`no upstream ${id} in ${service}`);
    return found;
  }

  stop(): Promise<void> {
    return this.proxy.stop(0);
  }
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  agent?: http.Agent | false;
  timeoutMs?: number;
}

/** One request to `host.svc` through the proxy. Rejects on a transport error. */
export function send(harness: ProxyHarness, service: string, path: string, options: SendOptions = {}): Promise<Reply> {
  const { host, port } = harness.address;
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request(
      { host, port, path, method: options.method ?? 'GET', agent: options.agent ?? false, headers: { host: `${service}.svc`, ...options.headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error(`no answer to ${path} within ${options.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A counter or gauge value from the process registry (0 when the series does not exist). */
export async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  const match = values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return match?.value ?? 0;
}
