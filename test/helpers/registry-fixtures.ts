import { defaultConfig } from '../../src/config/load';
import type { AclConfig, ApiConfig, RegistryConfig } from '../../src/config/types';
import type { RegistryOptions } from '../../src/registry/registry';
/**
 * Small fixtures for the registry's unit tests: a registration spec, the registry's state over
 * a MemoryStore, and per-test cleanup.
 */
import { afterEach } from 'node:test';
import { silentLogger } from '../../src/log';
import { CatalogView } from '../../src/registry/catalog-view';
import { CatalogWriter, type CheckSpec, type RegistrationSpec } from '../../src/registry/catalog-writer';
import { MemoryStore } from './memory-store';
import type { Store } from '../../src/registry/store/store';
import { FakeElection } from './fake-election';

export type Cleanups = Array<() => Promise<void> | void>;

/** The list a test pushes its cleanups to; after each test they run, last pushed first. */
export function cleanupsAfterEach(): Cleanups {
  const cleanups: Cleanups = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return cleanups;
}

/** Instance `id` of service `web` at 10.0.0.1:80 with these checks. */
export function webRegistration(id: string, checks: CheckSpec[], replaceExistingChecks = false): RegistrationSpec {
  return {
    id,
    service: 'web',
    address: '10.0.0.1',
    port: 80,
    tags: [],
    meta: {},
    weights: { passing: 1, warning: 1 },
    checks,
    replaceExistingChecks,
  };
}

export interface MemoryRegistry {
  store: MemoryStore;
  view: CatalogView;
  election: FakeElection;
  writer: CatalogWriter;
}

/** A started view and a writer over a fresh MemoryStore; `cleanups` closes them. */
export async function memoryRegistry(cleanups: Cleanups, options: { leading: boolean; now?: () => number }): Promise<MemoryRegistry> {
  const store = await openedStore(cleanups, new MemoryStore());
  const view = await startedView(cleanups, store);
  const election = new FakeElection(options.leading);
  const writer = new CatalogWriter({ store, view, now: options.now, election });
  return { store, view, election, writer };
}

/** `store`, opened; `cleanups` closes it. */
export async function openedStore<S extends Store>(cleanups: Cleanups, store: S): Promise<S> {
  await store.open();
  cleanups.push(() => store.close());
  return store;
}

/** A started CatalogView over `store`; `cleanups` stops it. */
export async function startedView(cleanups: Cleanups, store: Store): Promise<CatalogView> {
  const view = new CatalogView(store, { logger: silentLogger() });
  await view.start();
  cleanups.push(() => view.stop());
  return view;
}

/**
 * What a Registry takes besides its store and bus, from the schema's defaults: the API on a
 * free loopback port unless `api` says otherwise.
 */
export function registrySettings(api: Partial<ApiConfig> = {}, registry: Partial<RegistryConfig> = {}, acl: Partial<AclConfig> = {}): Pick<RegistryOptions, 'config'> {
  const defaults = defaultConfig();
  return {
    config: { api: { ...defaults.api, listen: '127.0.0.1:0', ...api }, registry: { ...defaults.registry, ...registry }, domain: defaults.domain, datacenter: defaults.datacenter, nodeName: defaults.nodeName, acl: { ...defaults.acl, ...acl } },
  };
}
