import { availableParallelism } from 'node:os';
import type { SwitchboardConfig } from '../config/types';
import type { Logger } from '../log';
import type { DataPlane, ProxyCatalog } from './data-plane';
import type { AdminServer } from './admin';
import { logListening, startRole, startRoleAdmin, type RunningRole } from './lifecycle';
import { configReloader } from './reload';

/**
 * `switchboard proxy`: the data plane on its own. It syncs its catalog from the registries
 * (`--registry`, failing over in order) and hears of changes on Redis. Statically stable:
 * while Redis, etcd or every registry is down it keeps routing on the catalog it has, and
 * catches up by itself (resync on reconnect, on a prevRev gap, and every --resync-interval).
 *
 * With `--workers 1` everything runs in this process. With more, this process becomes the
 * primary of a node:cluster (src/roles/proxy-primary.ts): it serves the admin listener and
 * supervises workers that each run a data plane (src/roles/data-plane.ts) on the shared port.
 * The data plane is loaded only where it runs: a primary never loads the proxy's modules.
 */

const EMPTY_CATALOG: ProxyCatalog = { rev: 0, services: {} };

export type RunningProxy = RunningRole<{ proxy: string; admin: string }>;

export async function startProxy(config: Readonly<SwitchboardConfig>, logger: Logger, load?: () => Readonly<SwitchboardConfig>): Promise<RunningProxy> {
  const workers = config.proxy.workers ?? availableParallelism();
  if (workers > 1) return (await import('./proxy-primary')).startProxyPrimary(config, logger, workers, load);
  return startSingleProcess(config, logger, load);
}

async function startSingleProcess(config: Readonly<SwitchboardConfig>, logger: Logger, load: (() => Readonly<SwitchboardConfig>) | undefined): Promise<RunningProxy> {
  let plane: DataPlane | undefined;
  let adminServer: AdminServer | undefined;
  const reload =
    load === undefined
      ? undefined
      : configReloader(config, load, (next) => (plane ? plane.proxy.reconfigure(next.proxy, next.domain, next.notify) : { applied: [], restartRequired: ['proxy'] }), logger, () => [
          ['admin.tls', () => adminServer?.reloadCertificates() ?? { reloaded: false }],
        ]);
  const running = await startRole(logger, async (role) => {
    const admin = await startRoleAdmin(role, {
      listen: config.admin.listen,
      tls: config.admin.tls,
      isReady: () => plane?.proxy.isReady() === true,
      logger,
      reload,
      endpoints: { '/catalog': () => plane?.catalog() ?? EMPTY_CATALOG },
    });

    adminServer = admin;
    const { startDataPlane } = await import('./data-plane');
    const started = await startDataPlane(config, logger);
    plane = started;
    role.stack.push('data plane', () => started.stop());
    logListening(logger, 'proxy', started.address, config.proxy.tls);

    return { proxy: started.address, admin: admin.address };
  });
  return reload === undefined ? running : { ...running, reload };
}
