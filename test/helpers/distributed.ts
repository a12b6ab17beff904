/**
 * Distributed mode on loopback, for fault tests, the cluster script and the propagation
 * benchmark: etcd (1 or 3 members), redis-server, N `switchboard registry` processes over
 * etcd and M `switchboard proxy` processes, every one on free ports, plus small HTTP helpers
 * to register instances and compare catalogs.
 *
 *   const t = await Topology.start({ etcdMembers: 3, registries: 2, proxies: 2 });
 *   await register(t.registries[0], { id: 'web-1', service: 'web', port });
 *   after(() => t.stop());
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import tls, { type PeerCertificate } from 'node:tls';
import type { Instance } from '../../src/catalog/model';
import type { TestCA } from './certs';
import { waitFor } from './child';
import { startEtcdCluster, type EtcdHandle } from './etcd';
import { startRedis, type RedisHandle } from './redis';
import { RoleProcess } from './role-process';

export interface TopologyOptions {
  etcdMembers?: number;
  registries?: number;
  proxies?: number;
  /** Extra flags for every registry / proxy. */
  registryArgs?: string[];
  proxyArgs?: string[];
  /** info or more verbose: the helpers find the listeners in the info-level `listening` lines. */
  logLevel?: string;
  /** Write each process's output to <logDir>/<name>.log. */
  logDir?: string;
  /** Redis channel and etcd key prefix; default: random, so runs never share state. */
  channel?: string;
  prefix?: string;
  /**
   * Every HTTP listener (registry API and admin, proxy listener and admin) over HTTPS with a
   * certificate this CA issues for 127.0.0.1 and localhost; proxies trust it (--ca-file). It
   * gives each process a --config file, so don't pass another one.
   */
  tls?: TestCA;
}

export class Topology {
  readonly registries: RoleProcess[] = [];
  readonly proxies: RoleProcess[] = [];
  readonly prefix: string;
  readonly channel: string;
  private stopped = false;
  /** Counted when a start begins (proxies start in parallel), for log file names. */
  private readonly started = { registry: 0, proxy: 0 };

  /** --config with every listener's certificate, when the topology speaks TLS. */
  private readonly tlsArgs: { registry: string[]; proxy: string[] } = { registry: [], proxy: [] };

  private constructor(
    readonly etcd: EtcdHandle,
    readonly redis: RedisHandle,
    private readonly options: TopologyOptions,
  ) {
    this.prefix = options.prefix ?? `sb-${randomBytes(4).toString('hex')}/`;
    this.channel = options.channel ?? `switchboard:test:${randomBytes(4).toString('hex')}`;
    if (options.tls !== undefined) {
      const config = tlsConfigFile(options.tls);
      this.tlsArgs = { registry: [`--config=${config}`], proxy: [`--config=${config}`, `--ca-file=${options.tls.certFile}`] };
    }
  }

  /** Starts everything; registries one by one (the first one leads), proxies once the registries serve. */
  static async start(options: TopologyOptions = {}): Promise<Topology> {
    const etcd = await startEtcdCluster(options.etcdMembers ?? 1);
    let redis: RedisHandle;
    try {
      redis = await startRedis();
    } catch (err) {
      await etcd.stop();
      throw err;
    }
    const topology = new Topology(etcd, redis, options);
    try {
      for (let i = 0; i < (options.registries ?? 2); i++) {
        await topology.startRegistry();
        if (i === 0) await waitFor('the first registry to lead', async () => (await leaderOf(topology.registries[0])) !== '', 15_000);
      }
      await Promise.all(Array.from({ length: options.proxies ?? 2 }, () => topology.startProxy()));
      await Promise.all(topology.proxies.map((p) => waitReady(p)));
      return topology;
    } catch (err) {
      await topology.stop();
      throw err;
    }
  }

  /** The comma-separated --registry value proxies get: every registry started so far. */
  get registryList(): string {
    return this.registries.map((r) => r.url('api', '')).join(',');
  }

  commonArgs(): string[] {
    return [`--redis=${this.redis.url}`, `--redis-channel=${this.channel}`, `--log-level=${this.options.logLevel ?? 'info'}`];
  }

  async startRegistry(extra: string[] = []): Promise<RoleProcess> {
    const args = [
      '--store=etcd',
      `--etcd-endpoints=${this.etcd.endpoints.join(',')}`,
      `--etcd-prefix=${this.prefix}`,
      ...this.commonArgs(),
      ...this.tlsArgs.registry,
      ...(this.options.registryArgs ?? []),
      ...extra,
    ];
    const registry = await RoleProcess.start('registry', args, { logFile: this.logFile(`registry-${++this.started.registry}`), ca: this.options.tls?.pem });
    this.registries.push(registry);
    return registry;
  }

  async startProxy(extra: string[] = []): Promise<RoleProcess> {
    // One process per proxy unless the caller passes --workers (the last flag wins): the fault
    // tests count Redis subscribers and resyncs per proxy process.
    const args = [`--registry=${this.registryList}`, '--workers=1', ...this.commonArgs(), ...this.tlsArgs.proxy, ...(this.options.proxyArgs ?? []), ...extra];
    const proxy = await RoleProcess.start('proxy', args, { logFile: this.logFile(`proxy-${++this.started.proxy}`), ca: this.options.tls?.pem });
    this.proxies.push(proxy);
    return proxy;
  }

  /** Everything this topology started, killed; temp dirs removed. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all([...this.proxies, ...this.registries].map((p) => p.cleanup()));
    await Promise.all([this.redis.destroy(), this.etcd.stop()]);
  }

  /** Every process's output, for a failing test's message. */
  output(): string {
    return [...this.registries, ...this.proxies].map((p) => p.output()).join('\n');
  }

  private logFile(name: string): string | undefined {
    return this.options.logDir ? path.join(this.options.logDir, `${name}.log`) : undefined;
  }
}

/** One config file for every role: the same certificate on each HTTP listener. */
function tlsConfigFile(ca: TestCA): string {
  const pair = ca.issue('switchboard', ['127.0.0.1', 'localhost']);
  const tls = { certificates: [pair] };
  const file = path.join(ca.dir, 'switchboard-tls.json');
  writeFileSync(file, JSON.stringify({ api: { tls }, admin: { tls }, proxy: { tls } }, null, 2));
  return file;
}

// ---- HTTP helpers --------------------------------------------------------------------------

export interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
  agent?: http.Agent;
  /** The CA an https URL's certificate must chain to (a topology started with `tls`). */
  ca?: Buffer;
}

/** One request on a fresh connection (a killed server leaves no pooled socket behind); https for an https URL. */
export function httpRequest(url: string, options: HttpRequestOptions = {}): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const common = { method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false };
    const onResponse = (res: http.IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    };
    // The certificate is checked against the URL's host, as curl does, not against a Host header
    // naming a service (node's default).
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    const checkServerIdentity = (_: string, cert: PeerCertificate): Error | undefined => tls.checkServerIdentity(host, cert);
    const req = url.startsWith('https:') ? https.request(url, { ...common, ca: options.ca, checkServerIdentity }, onResponse) : http.request(url, common, onResponse);
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error(`${url}: no answer within ${options.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface InstanceSpec {
  id: string;
  service: string;
  port: number;
  address?: string;
  tags?: string[];
  /** A TTL check (e.g. "10s"); the instance is critical until its first pass. */
  ttl?: string;
}

/** Where a registry API is: a RoleProcess or a base URL. */
export type RegistryRef = RoleProcess | string;

/** `path` on a registry's API, with the CA its certificate chains to when it has one. */
function apiRequest(registry: RegistryRef, pathAndQuery: string, options: HttpRequestOptions = {}): Promise<HttpReply> {
  if (typeof registry === 'string') return httpRequest(`${registry.replace(/\/+$/, '')}${pathAndQuery}`, options);
  return httpRequest(registry.url('api', pathAndQuery), { ca: registry.ca, ...options });
}

/** The body of PUT /v1/agent/service/register, Consul's field names. */
export function registrationBody(spec: InstanceSpec): string {
  return JSON.stringify({
    ID: spec.id,
    Name: spec.service,
    Address: spec.address ?? '127.0.0.1',
    Port: spec.port,
    Tags: spec.tags ?? [],
    ...(spec.ttl ? { Check: { CheckID: `service:${spec.id}`, TTL: spec.ttl } } : {}),
  });
}

export function register(registry: RegistryRef, spec: InstanceSpec, agent?: http.Agent): Promise<HttpReply> {
  return apiRequest(registry, '/v1/agent/service/register', { method: 'PUT', body: registrationBody(spec), agent });
}

export function deregister(registry: RegistryRef, id: string, agent?: http.Agent): Promise<HttpReply> {
  return apiRequest(registry, `/v1/agent/service/deregister/${encodeURIComponent(id)}`, { method: 'PUT', agent });
}

export function passCheck(registry: RegistryRef, checkId: string): Promise<HttpReply> {
  return apiRequest(registry, `/v1/agent/check/pass/${encodeURIComponent(checkId)}`, { method: 'PUT' });
}

/** The API address /v1/status/leader names ('' when there is none). */
export async function leaderOf(registry: RegistryRef): Promise<string> {
  const reply = await apiRequest(registry, '/v1/status/leader');
  return JSON.parse(reply.body) as string;
}

export interface CatalogState {
  rev: number;
  services: Record<string, Instance[]>;
}

/** The catalog a registry serves proxies (its /v1/switchboard/snapshot). */
export async function registryCatalog(registry: RegistryRef): Promise<CatalogState> {
  const reply = await apiRequest(registry, '/v1/switchboard/snapshot');
  if (reply.status !== 200) throw new Error(`snapshot answered ${reply.status}: ${reply.body}`);
  return JSON.parse(reply.body) as CatalogState;
}

/** The catalog a proxy routes on (GET /catalog on its admin listener). */
export async function proxyCatalog(proxy: RoleProcess): Promise<CatalogState> {
  const reply = await httpRequest(proxy.url('admin', '/catalog'), { ca: proxy.ca });
  if (reply.status !== 200) throw new Error(`/catalog answered ${reply.status}: ${reply.body}`);
  return JSON.parse(reply.body) as CatalogState;
}

/** Same services, same instances, same records (revisions aside). */
export function sameServices(a: CatalogState, b: CatalogState): boolean {
  return JSON.stringify(sortedServices(a)) === JSON.stringify(sortedServices(b));
}

function sortedServices(c: CatalogState): [string, Instance[]][] {
  return Object.entries(c.services)
    .filter(([, list]) => list.length > 0)
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

/** Instance ids per service, for readable assertion messages. */
export function idsOf(c: CatalogState): Record<string, string[]> {
  return Object.fromEntries(sortedServices(c).map(([name, list]) => [name, list.map((i) => i.id).sort()]));
}

/** GET through a proxy by Host `<service>.svc`. */
export function viaProxy(proxy: RoleProcess, service: string, pathAndQuery = '/', agent?: http.Agent): Promise<HttpReply> {
  return httpRequest(proxy.url('proxy', pathAndQuery), { headers: { host: `${service}.svc` }, agent, ca: proxy.ca });
}

/** Which backend (test/helpers/backend.ts replies {backend}) answered through the proxy, or undefined. */
export async function servedBy(proxy: RoleProcess, service: string): Promise<string | undefined> {
  const reply = await viaProxy(proxy, service);
  if (reply.status !== 200) return undefined;
  return (JSON.parse(reply.body) as { backend?: string }).backend;
}

export async function waitReady(proxy: RoleProcess, timeoutMs = 15_000): Promise<void> {
  await waitFor(`${proxy.role} ${proxy.address('admin')} to be ready`, async () => (await httpRequest(proxy.url('admin', '/readyz'), { ca: proxy.ca })).status === 200, timeoutMs);
}

/** Poll until every proxy's catalog equals the registry's (after the last change). */
export async function waitConverged(registry: RegistryRef, proxies: RoleProcess[], timeoutMs = 15_000): Promise<CatalogState> {
  let expected: CatalogState | undefined;
  await waitFor(
    'every proxy to hold exactly the registry catalog',
    async () => {
      expected = await registryCatalog(registry);
      const held = await Promise.all(proxies.map((p) => proxyCatalog(p)));
      return held.every((c) => sameServices(c, expected as CatalogState));
    },
    timeoutMs,
  );
  return expected as CatalogState;
}

/** Value of one sample of a Prometheus text exposition (0 when absent). */
export async function metricValue(target: RoleProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  const reply = await httpRequest(target.url('admin', '/metrics'), { ca: target.ca });
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of reply.body.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (wanted.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}
