import type { SwitchboardConfig } from '../config/types';
import type { Logger } from '../log';
import { startAdmin } from '../proxy/admin';
import type { DataPlane, ProxyCatalog } from './data-plane';
import { StopStack, listen, logListening } from './lifecycle';

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

export interface RunningProxy {
  readonly addresses: { proxy: string; admin: string };
  stop(): Promise<void>;
}

export async function startProxy(config: Readonly<SwitchboardConfig>, logger: Logger): Promise<RunningProxy> {
  if ((config.proxy.workers ?? 1) > 1) return (await import('./proxy-primary')).startProxyPrimary(config, logger);
  return startSingleProcess(config, logger);
}

async function startSingleProcess(config: Readonly<SwitchboardConfig>, logger: Logger): Promise<RunningProxy> {
  const stack = new StopStack(logger);
  let plane: DataPlane | undefined;
  let draining = false;
  try {
    // Started before the data plane so a probe sees "not ready" rather than "connection refused".
    const admin = await listen('admin', config.admin.listen, () =>
      startAdmin({
        listen: config.admin.listen,
        isReady: () => !draining && plane?.proxy.isReady() === true,
        logger,
        endpoints: { '/catalog': () => plane?.catalog() ?? EMPTY_CATALOG },
      }),
    );
    stack.push('admin', () => admin.close());
    logListening(logger, 'admin', admin.address);

    const { startDataPlane } = await import('./data-plane');
    const started = await startDataPlane(config, logger);
    plane = started;
    stack.push('data plane', () => started.stop());
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
