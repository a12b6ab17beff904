import { LocalBus } from '../bus/local-bus';
import { LocalReportChannel } from '../bus/local-report-channel';
import type { SwitchboardConfig } from '../config/types';
import { SwitchboardError } from '../errors';
import type { Logger } from '../log';
import { ProxyServer } from '../proxy/server';
import { Registry } from '../registry/registry';
import { EmbeddedStore } from '../registry/store/embedded-store';
import { startRoleDns } from './dns';
import { configReloader } from './reload';
import type { AdminServer } from './admin';
import { listen, logListening, startRole, startRoleAdmin, type RunningRole } from './lifecycle';

/**
 * `switchboard all`: the registry over an embedded store, the proxy over the registry's
 * in-process catalog source, an in-process bus between them, and the admin listener. The
 * wiring is the distributed one with local implementations, so the `registry` and `proxy`
 * roles only swap the store, the bus and the source.
 */

export type RunningAll = RunningRole<{ api: string; proxy: string; admin: string; dns: string }>;

/** stop(): stop accepting, drain in-flight requests (bounded by proxy.drain), flush the journal. */
export async function startAll(config: Readonly<SwitchboardConfig>, logger: Logger, load?: () => Readonly<SwitchboardConfig>): Promise<RunningAll> {
  assertLocalOnly(config);
  let proxy: ProxyServer | undefined;
  let registry: Registry | undefined;
  let admin: AdminServer | undefined;
  let dns = '';
  // The proxy applies what it can; the registry's settings need a restart (reload.ts), its
  // certificate files and the admin listener's are read again.
  const reload =
    load === undefined
      ? undefined
      : configReloader(
          config,
          load,
          (next) => (proxy ? proxy.reconfigure(next.proxy, next.domain, next.notify) : { applied: [], restartRequired: ['proxy'] }),
          logger,
          () => [
            ['api.tls', () => registry?.reloadCertificates() ?? { reloaded: false }],
            ['admin.tls', () => admin?.reloadCertificates() ?? { reloaded: false }],
          ],
        );
  const running = await startRole(logger, async (role) => {
    const { stack } = role;
    const store = new EmbeddedStore({
      dataDir: config.dataDir,
      compactEvery: config.store.compactEvery,
      logger: logger.child({ component: 'store' }),
      // Writes acknowledged after a failed fdatasync could be lost: end now, replay at the next start.
      onFatal: (err) => {
        logger.fatal({ err }, 'the journal can no longer be trusted: exiting so that the next start replays it');
        process.exit(1);
      },
    });
    await store.open();
    stack.push('store', () => store.close());

    const bus = new LocalBus();
    stack.push('bus', () => bus.close());
    // The proxy's runtime reports reach the registry's web UI in-process.
    const reports = new LocalReportChannel();

    // Not ready while the disk is full: a load balancer should send registrations elsewhere.
    const adminServer = await startRoleAdmin(role, { listen: config.admin.listen, tls: config.admin.tls, isReady: () => proxy?.isReady() === true && store.writable, logger, reload });
    admin = adminServer;

    // Without an election the registry uses LocalElection: this process always leads.
    const started = new Registry({
      store,
      bus,
      logger,
      config,
      // Known once bound (port 0 resolves then): registrations may never point at them.
      otherListeners: () => [adminServer.address, proxy?.address ?? config.proxy.listen, dns],
      reports,
    });
    await listen('api', config.api.listen, () => started.start());
    registry = started;
    stack.push('registry', () => started.stop());
    logListening(logger, 'api', started.address, config.api.tls);
    dns = await startRoleDns(stack, config, started, logger);

    const source = started.source();
    stack.push('catalog source', () => source.close());
    const dataPlane = new ProxyServer({ config: config.proxy, domain: config.domain, source, bus, logger, notify: config.notify, reports });
    await listen('proxy', config.proxy.listen, () => dataPlane.start());
    proxy = dataPlane;
    stack.push('proxy', () => dataPlane.stop(config.proxy.drain));
    logListening(logger, 'proxy', dataPlane.address, config.proxy.tls);

    return { api: started.address, proxy: dataPlane.address, admin: adminServer.address, dns };
  });
  return reload === undefined ? running : { ...running, reload };
}

/** `all` is the single-node shape: another store or bus needs the separate roles. */
function assertLocalOnly(config: Readonly<SwitchboardConfig>): void {
  if (config.store.kind !== 'embedded') {
    throw new SwitchboardError('config_invalid', `store.kind: the all role runs the embedded store, got "${config.store.kind}"`, { field: 'store.kind' });
  }
  if (config.bus.kind !== 'local') {
    throw new SwitchboardError('config_invalid', `bus.kind: the all role runs the in-process bus, got "${config.bus.kind}"`, { field: 'bus.kind' });
  }
}
