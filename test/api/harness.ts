/**
 * The registry core wired as in Registry, over a MemoryStore, without a socket: tests drive
 * the API with fastify's inject.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { CatalogMessage } from '../../src/bus/bus';
import { LocalBus } from '../../src/bus/local-bus';
import { defaultConfig } from '../../src/config/load';
import type { AclConfig, ApiConfig, RegistryConfig } from '../../src/config/types';
import { AclStore } from '../../src/registry/acl/acl-store';
import { silentLogger } from '../../src/log';
import { TargetPolicy } from '../../src/registry/targets';
import { buildApi } from '../../src/registry/api/server';
import { CatalogView } from '../../src/registry/catalog-view';
import { KvWriter } from '../../src/registry/kv/kv-writer';
import { EventLog } from '../../src/registry/ui/event-log';
import { RuntimeView } from '../../src/registry/ui/runtime-view';
import { CatalogWriter } from '../../src/registry/catalog-writer';
import { TtlExpiryLoop } from '../../src/registry/checks/ttl-expiry';
import { LocalElection } from '../../src/registry/election/local-election';
import { Publisher } from '../../src/registry/publisher';
import { MemoryStore } from '../helpers/memory-store';
import type { Store } from '../../src/registry/store/store';

export interface Harness {
  store: Store;
  view: CatalogView;
  writer: CatalogWriter;
  app: FastifyInstance;
  /** Every message the publisher put on the bus. */
  messages: CatalogMessage[];
  close(): Promise<void>;
}

export interface HarnessOptions {
  store?: Store;
  maxWaitMs?: number;
  ringSize?: number;
  /** How long a write waits for the view to show it before answering 503. */
  revWaitMs?: number;
  /** API settings over the schema's defaults (protectedMode, allowedHosts, …). */
  api?: Partial<ApiConfig>;
  /** registry.* over the defaults (deniedTargets, allowedTargets, enableScriptChecks…). */
  targets?: Partial<RegistryConfig>;
  /** ACL settings over the defaults; `{ enabled: true }` turns tokens on. */
  acl?: Partial<AclConfig>;
  /** This process's listeners as the target policy sees them (default: the API's 127.0.0.1:8500). */
  listeners?: string[];
  /** The web UI's runtime view and timeline (tests feed reports in). */
  runtime?: RuntimeView;
  events?: EventLog;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const logger = silentLogger();
  const store = options.store ?? new MemoryStore();
  await store.open();
  const view = new CatalogView(store, { logger, ringSize: options.ringSize, revWaitMs: options.revWaitMs });
  await view.start();
  const election = new LocalElection(() => '127.0.0.1:8500');
  const writer = new CatalogWriter({ store, view });
  const bus = new LocalBus();
  const messages: CatalogMessage[] = [];
  bus.subscribe({ onMessage: (m) => messages.push(m), onConnect: () => undefined });
  const publisher = new Publisher({ store, bus, election, logger, persistRevision: false });
  publisher.start();
  const ttl = new TtlExpiryLoop({ view, writer, election, logger });
  ttl.start();
  const defaults = defaultConfig();
  const aclConfig = { ...defaults.acl, ...options.acl };
  const acl = aclConfig.enabled
    ? new AclStore(store, { defaultPolicy: aclConfig.defaultPolicy, initialManagement: aclConfig.tokens.initialManagement, policies: aclConfig.policies, staticTokens: aclConfig.staticTokens }, logger)
    : undefined;
  await acl?.start();
  const app = buildApi({
    acl,
    view,
    writer,
    kvWriter: new KvWriter(store, view.kv),
    ui: uiOf(options),
    election,
    logger,
    node: { name: defaults.nodeName, datacenter: defaults.datacenter, address: '127.0.0.1' },
    maxWaitMs: options.maxWaitMs ?? 600_000,
    domain: defaults.domain,
    minCheckIntervalMs: options.targets?.minCheckInterval ?? defaults.registry.minCheckInterval,
    scriptChecks: options.targets?.enableScriptChecks ?? defaults.registry.enableScriptChecks,
    targets: new TargetPolicy({ ...defaults.registry, ...options.targets }, () => options.listeners ?? ['127.0.0.1:8500']),
    clients: { ...defaults.api, ...options.api },
  });
  await app.ready();
  return {
    store,
    view,
    writer,
    app,
    messages,
    close: async () => {
      acl?.stop();
      await ttl.stop();
      await publisher.stop();
      await app.close();
      view.stop();
      await store.close();
    },
  };
}

export interface Reply {
  status: number;
  headers: LightMyRequestResponse['headers'];
  body: string;
  json: unknown;
  index: number;
}

function toReply(response: LightMyRequestResponse): Reply {
  let json: unknown;
  try {
    json = response.body === '' ? undefined : JSON.parse(response.body);
  } catch {
    json = undefined;
  }
  const index = Number(response.headers['x-consul-index'] ?? NaN);
  return { status: response.statusCode, headers: response.headers, body: response.body, json, index };
}

export async function get(app: FastifyInstance, url: string): Promise<Reply> {
  return toReply(await app.inject({ method: 'GET', url }));
}

/** PUT with a JSON body (objects are serialized; strings are sent as they are). */
export async function put(app: FastifyInstance, url: string, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const headers = payload === undefined ? {} : { 'content-type': 'application/json' };
  return toReply(await app.inject({ method: 'PUT', url, payload, headers }));
}

export async function register(app: FastifyInstance, body: unknown, query = ''): Promise<Reply> {
  return put(app, `/v1/agent/service/register${query}`, body);
}

/** Asserting helper: the request must have succeeded. */
export function ok(reply: Reply): Reply {
  if (reply.status !== 200) throw new Error(`expected 200, got ${reply.status}: ${reply.body}`);
  return reply;
}

/** The web UI's runtime view over one timeline (a test's own, or fresh). */
function uiOf(options: HarnessOptions): { runtime: RuntimeView; events: EventLog } {
  const events = options.events ?? new EventLog();
  return { runtime: options.runtime ?? new RuntimeView(events), events };
}
