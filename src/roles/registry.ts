import { RedisBus } from '../bus/redis-bus';
import { RedisReportChannel } from '../bus/redis-report-channel';
import type { SwitchboardConfig } from '../config/types';
import { SwitchboardError, isSwitchboardError } from '../errors';
import type { Logger } from '../log';
import { EtcdElection } from '../registry/election/etcd-election';
import { Registry } from '../registry/registry';
import { StoreHealth } from '../registry/store-health';
import { EmbeddedStore } from '../registry/store/embedded-store';
import { EtcdStore } from '../registry/store/etcd-store';
import type { Store } from '../registry/store/store';
import { startRoleDns } from './dns';
import { listen, logListening, startRole, startRoleAdmin, type RunningRole } from './lifecycle';

/**
 * `switchboard registry`: the Consul-compatible API over a store, publishing catalog changes
 * on Redis. With `--store etcd` any number of these run side by side over one etcd cluster:
 * they hold no state of their own, and an etcd election picks the one that runs checks,
 * expires TTLs and publishes. With the embedded store there is one registry, always leader.
 */

export type RunningRegistry = RunningRole<{ api: string; admin: string; dns: string }>;

export async function startRegistry(config: Readonly<SwitchboardConfig>, logger: Logger): Promise<RunningRegistry> {
  let apiServing = false;
  let dns = '';
  return startRole(logger, async (role) => {
    const { stack } = role;
    const store = openStore(config, logger);
    stack.push('store', () => store.close());
    await openOrExplain(store, config);

    const bus = new RedisBus({ url: config.bus.redis.url, channel: config.bus.redis.channel, key: config.bus.redis.key, logger: logger.child({ component: 'bus' }) });
    stack.push('bus', () => bus.close());

    // Proxies' runtime reports, for the web UI.
    const reports = new RedisReportChannel({ url: config.bus.redis.url, channel: config.bus.redis.channel, logger: logger.child({ component: 'reports' }) });
    stack.push('report channel', () => reports.close());

    const health = new StoreHealth({ store, logger });
    health.start();
    stack.push('store health', async () => health.stop());

    // Ready = serving and able to write: a load balancer in front of several registries
    // should send registrations elsewhere while this one's store is unreachable.
    const admin = await startRoleAdmin(role, { listen: config.admin.listen, tls: config.admin.tls, isReady: () => apiServing && health.healthy, logger });

    const advertise = (): string => config.api.advertise ?? registry.address;
    const registry: Registry = new Registry({
      store,
      bus,
      logger,
      config,
      otherListeners: () => [admin.address, dns],
      election: electionFor(config, advertise, logger),
      advertise: config.api.advertise,
      storeHealthy: () => health.healthy,
      reports,
    });
    await listen('api', config.api.listen, () => registry.start());
    apiServing = true;
    stack.push('registry', () => registry.stop());
    logListening(logger, 'api', registry.address, config.api.tls);
    dns = await startRoleDns(stack, config, registry, logger, () => health.healthy);
    warnIfUnadvertisable(config, registry.address, logger);

    return { api: registry.address, admin: admin.address, dns };
  });
}

function openStore(config: Readonly<SwitchboardConfig>, logger: Logger): Store {
  const storeLogger = logger.child({ component: 'store' });
  if (config.store.kind === 'etcd') {
    return new EtcdStore({ endpoints: [...config.store.etcd.endpoints], prefix: config.store.etcd.prefix, logger: storeLogger });
  }
  return new EmbeddedStore({ dataDir: config.dataDir, compactEvery: config.store.compactEvery, logger: storeLogger });
}

/** A registry cannot start without its store: say which one it could not reach. */
async function openOrExplain(store: Store, config: Readonly<SwitchboardConfig>): Promise<void> {
  try {
    await store.open();
  } catch (err) {
    if (!isSwitchboardError(err, 'store_unavailable') || config.store.kind !== 'etcd') throw err;
    const endpoints = config.store.etcd.endpoints.join(',');
    throw new SwitchboardError('store_unavailable', `cannot reach etcd at ${endpoints} (--etcd-endpoints): ${err.message}`, { cause: err });
  }
}

/** etcd: registries elect a leader among themselves. Embedded: undefined = this process leads. */
function electionFor(config: Readonly<SwitchboardConfig>, advertise: () => string, logger: Logger): EtcdElection | undefined {
  if (config.store.kind !== 'etcd') return undefined;
  return new EtcdElection({
    endpoints: [...config.store.etcd.endpoints],
    prefix: config.store.etcd.prefix,
    candidate: advertise,
    ttlSeconds: config.registry.electionTtl / 1000,
    logger: logger.child({ component: 'election' }),
  });
}

/** Other processes cannot reach 0.0.0.0 or [::]: /v1/status/leader would name no usable address. */
function warnIfUnadvertisable(config: Readonly<SwitchboardConfig>, bound: string, logger: Logger): void {
  if (config.api.advertise !== undefined) return;
  if (/^(0\.0\.0\.0|\[::\]):/.test(bound)) {
    logger.warn({ address: bound }, 'the API listens on every interface: set --advertise to the address other processes should use');
  }
}
