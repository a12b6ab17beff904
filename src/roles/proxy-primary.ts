import type { SwitchboardConfig } from '../config/types';
import type { Logger } from '../log';
import { registry as metricsRegistry } from '../metrics';
import { ClusterMetrics } from './cluster-metrics';
import type { AdminServer } from './admin';
import { logListening, startRole, startRoleAdmin } from './lifecycle';
import { configReloader } from './reload';
import type { ProxyCatalog } from './data-plane';
import type { RunningProxy } from './proxy';
import type { WorkerStatus } from './worker-protocol';
import { WorkerPool, type WorkerInfo } from './worker-pool';

/**
 * `switchboard proxy --workers N` (N > 1): this process is the node:cluster primary. It
 * serves the admin listener for the whole proxy and supervises N workers, each a complete
 * data plane (own catalog cache, Redis subscription and registry source) on the shared
 * proxy port (src/roles/worker-pool.ts says how connections are spread).
 *
 *   /metrics   the workers' metrics summed (src/roles/cluster-metrics.ts)
 *   /readyz    every serving worker has synced its catalog
 *   /catalog   the catalog of the worker furthest behind (the one the whole proxy is sure of)
 *   /workers   each worker's pid, state, restarts and requests answered
 */

/** On top of proxy.drain: time for a worker to close its connections and exit. */
const STOP_GRACE_MS = 5_000;
const ASK_TIMEOUT_MS = 2_000;

/** `count`: proxy.workers, or one per core when unset (proxy.ts). */
export async function startProxyPrimary(config: Readonly<SwitchboardConfig>, logger: Logger, count: number, load?: () => Readonly<SwitchboardConfig>): Promise<RunningProxy> {
  const pool = new WorkerPool(config, logger, count);
  const metrics = new ClusterMetrics(pool, metricsRegistry);
  // Every worker applies a reload; a worker that does not answer in time is left out of the report.
  let adminServer: AdminServer | undefined;
  const reload =
    load === undefined
      ? undefined
      : configReloader(config, load, (next) => pool.reload(next, ASK_TIMEOUT_MS), logger, () => [['admin.tls', () => adminServer?.reloadCertificates() ?? { reloaded: false }]]);
  const running = await startRole(logger, async (role) => {
    const admin = await startRoleAdmin(role, {
      listen: config.admin.listen,
      tls: config.admin.tls,
      isReady: () => pool.ready(),
      logger,
      reload,
      metrics: () => metrics.render(),
      endpoints: { '/catalog': () => laggingCatalog(pool), '/workers': () => describeWorkers(pool) },
    });

    adminServer = admin;
    const address = await pool.start();
    role.stack.push('workers', () => pool.stop(config.proxy.drain + STOP_GRACE_MS));
    logListening(logger, 'proxy', address);
    logger.info({ workers: count }, 'proxy workers started');

    return { proxy: address, admin: admin.address };
  });
  return reload === undefined ? running : { ...running, reload };
}

/** Converged means every worker converged: answer with the lowest revision. */
async function laggingCatalog(pool: WorkerPool): Promise<ProxyCatalog> {
  const answers = [...(await pool.askAll('catalog', ASK_TIMEOUT_MS)).values()].filter(isCatalog);
  if (answers.length === 0) return { rev: 0, services: {} };
  return answers.reduce((lowest, c) => (c.rev < lowest.rev ? c : lowest));
}

function isCatalog(value: unknown): value is ProxyCatalog {
  return typeof value === 'object' && value !== null && typeof (value as ProxyCatalog).rev === 'number';
}

/** GET /workers: the pool's view joined with what each worker says about itself. */
async function describeWorkers(pool: WorkerPool): Promise<{ workers: Array<WorkerInfo & Partial<WorkerStatus>> }> {
  const answers = await pool.askAll('status', ASK_TIMEOUT_MS);
  const bySlot = new Map<number, WorkerStatus>();
  for (const [workerId, status] of answers) {
    const slot = pool.slotOf(workerId);
    if (slot !== undefined && status !== undefined) bySlot.set(slot, status as WorkerStatus);
  }
  return { workers: pool.describe().map((info) => ({ ...info, ...bySlot.get(info.worker) })) };
}
