import { RedisBus } from '../bus/redis-bus';
import { RedisReportChannel } from '../bus/redis-report-channel';
import { FailoverSource } from '../catalog/failover-source';
import type { Instance } from '../catalog/model';
import type { SwitchboardConfig } from '../config/types';
import type { Logger } from '../log';
import { ProxyServer } from '../proxy/server';
import { StopStack, listen, unwindOnFailure } from './lifecycle';
import { registryUrls } from './registry-urls';
import { registryDispatcher } from '../tls/client-tls';

/**
 * One process's data plane for `switchboard proxy`: the Redis bus, the registry source and
 * the ProxyServer over them. The single-process proxy (src/roles/proxy.ts) runs one beside its
 * admin listener; each cluster worker (src/roles/proxy-worker.ts) runs one on the shared port.
 */

/** What GET /catalog on the admin listener answers: the catalog this proxy routes on. */
export interface ProxyCatalog {
  rev: number;
  services: Record<string, readonly Instance[]>;
}

export interface DataPlane {
  readonly proxy: ProxyServer;
  /** host:port actually bound. */
  readonly address: string;
  /** The catalog it routes on (GET /catalog). */
  catalog(): ProxyCatalog;
  /** Drains in-flight requests (bounded by proxy.drain), then closes the source and the bus. */
  stop(): Promise<void>;
}

export interface DataPlaneOptions {
  /**
   * Sync the catalog before listening. A replacement cluster worker uses it: the port is
   * already served by its siblings, and it must not answer `unknown_service` from an empty
   * catalog in the meantime.
   */
  listenAfterSync?: boolean;
  /** Gives up a start still waiting for that first sync (the worker was told to stop). */
  signal?: AbortSignal;
}

export async function startDataPlane(config: Readonly<SwitchboardConfig>, logger: Logger, options: DataPlaneOptions = {}): Promise<DataPlane> {
  const urls = registryUrls(config.proxy.registry, 'proxy');
  const stack = new StopStack(logger);
  return unwindOnFailure(stack, async () => {
    const bus = new RedisBus({ url: config.bus.redis.url, channel: config.bus.redis.channel, key: config.bus.redis.key, logger: logger.child({ component: 'bus' }) });
    stack.push('bus', () => bus.close());
    const source = FailoverSource.overHttp(urls, logger.child({ component: 'catalog-source' }), {
      ...(config.token === undefined ? {} : { token: config.token }),
      dispatcher: registryDispatcher(config.caFile),
    });
    stack.push('catalog source', () => source.close());

    const reports = new RedisReportChannel({ url: config.bus.redis.url, channel: config.bus.redis.channel, logger: logger.child({ component: 'reports' }) });
    stack.push('report channel', () => reports.close());
    const proxy = new ProxyServer({ config: config.proxy, domain: config.domain, source, bus, logger, notify: config.notify, reports });
    stack.push('proxy', () => proxy.stop(config.proxy.drain));
    if (options.listenAfterSync) {
      // ProxyServer.start() below finds the cache already started and leaves it be.
      proxy.cache.start();
      await untilReady(proxy, options.signal);
    }
    await listen('proxy', config.proxy.listen, () => proxy.start());
    return { proxy, address: proxy.address, catalog: () => catalogOf(proxy), stop: () => stack.unwind() };
  });
}

const READY_POLL_MS = 25;

/** Resolves after the first catalog sync. The cache has no event for it (an empty catalog emits no update), so look. */
export async function untilReady(proxy: ProxyServer, signal: AbortSignal | undefined): Promise<void> {
  while (!proxy.isReady()) {
    if (signal?.aborted) throw new Error('stopped before the first catalog sync');
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
}

function catalogOf(proxy: ProxyServer): ProxyCatalog {
  return { rev: proxy.cache.rev, services: Object.fromEntries(proxy.cache.services()) };
}
