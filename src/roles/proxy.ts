import { RedisBus } from '../bus/redis-bus';
import { FailoverSource } from '../catalog/failover-source';
import type { Instance } from '../catalog/model';
import type { SwitchboardConfig } from '../config/types';
import type { Logger } from '../log';
import { startAdmin } from '../proxy/admin';
import { Proxy } from '../proxy/server';
import { StopStack, listen, logListening } from './lifecycle';
import { registryUrls } from './registry-urls';

/**
 * `switchboard proxy`: the data plane on its own. It syncs its catalog from the registries
 * (`--registry`, failing over in order) and hears of changes on Redis. Statically stable:
 * while Redis, etcd or every registry is down it keeps routing on the catalog it has, and
 * catches up by itself (resync on reconnect, on a prevRev gap, and every --resync-interval).
 */

export interface RunningProxy {
  readonly addresses: { proxy: string; admin: string };
  stop(): Promise<void>;
}

/** What GET /catalog on the admin listener answers: the catalog this proxy routes on. */
export interface ProxyCatalog {
  rev: number;
  services: Record<string, readonly Instance[]>;
}

export async function startProxy(config: Readonly<SwitchboardConfig>, logger: Logger): Promise<RunningProxy> {
  const urls = registryUrls(config.proxy.registry, 'proxy');
  const stack = new StopStack(logger);
  let proxy: Proxy | undefined;
  let draining = false;
  try {
    const bus = new RedisBus({ url: config.bus.redis.url, channel: config.bus.redis.channel, logger: logger.child({ component: 'bus' }) });
    stack.push('bus', () => bus.close());
    const source = FailoverSource.overHttp(urls, logger.child({ component: 'catalog-source' }));
    stack.push('catalog source', () => source.close());

    const admin = await listen('admin', config.admin.listen, () =>
      startAdmin({
        listen: config.admin.listen,
        isReady: () => !draining && proxy?.isReady() === true,
        logger,
        endpoints: { '/catalog': () => catalogOf(proxy) },
      }),
    );
    stack.push('admin', () => admin.close());
    logListening(logger, 'admin', admin.address);

    const started = new Proxy({ config: config.proxy, domain: config.domain, source, bus, logger });
    await listen('proxy', config.proxy.listen, () => started.start());
    proxy = started;
    stack.push('proxy', () => started.stop(config.proxy.drainMs));
    logListening(logger, 'proxy', started.address);

    return {
      addresses: { proxy: started.address, admin: admin.address },
      stop: () => {
        draining = true;
        return stack.unwind();
      },
    };
  } catch (err) {
    await stack.unwind();
    throw err;
  }
}

export function catalogOf(proxy: Proxy | undefined): ProxyCatalog {
  if (!proxy) return { rev: 0, services: {} };
  return { rev: proxy.cache.rev, services: Object.fromEntries(proxy.cache.services()) };
}
