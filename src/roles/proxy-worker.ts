import cluster from 'node:cluster';
import type { SwitchboardConfig } from '../config/types';
import { isSwitchboardError } from '../errors';
import { createLogger, setLogLevel, type Logger } from '../log';
import { collectProcessMetrics, registry } from '../metrics';
import { startDataPlane, untilReady, type DataPlane } from './data-plane';
import { installCrashHandlers, onStopSignals } from './process-handlers';
import { isToWorker, type AskWhat, type FromWorker, type ReloadReport, type WorkerStatus } from './worker-protocol';

/**
 * One worker of `switchboard proxy --workers N`: the script the primary forks
 * (src/roles/proxy-primary.ts). It waits for its configuration, runs a whole data plane of
 * its own (catalog cache, Redis subscription, registry source, Proxy on the shared port) and
 * answers the primary's questions. It has no admin listener: the primary serves that.
 *
 * It drains and exits 0 when the primary says stop and on SIGTERM/SIGINT (a terminal's
 * Ctrl-C reaches the whole process group). If the primary dies, node:cluster exits the worker
 * at once (IPC disconnect), so no worker outlives its primary.
 */

const REQUESTS = 'switchboard_proxy_requests_total';
/** On top of proxy.drain, before a worker whose drain hangs exits anyway. */
const EXIT_GRACE_MS = 5_000;

class ProxyWorker {
  private plane: DataPlane | undefined;
  private readonly abort = new AbortController();
  private stopping = false;

  constructor(
    private readonly config: Readonly<SwitchboardConfig>,
    private readonly logger: Logger,
  ) {}

  async start(listenAfterSync: boolean): Promise<void> {
    try {
      this.plane = await startDataPlane(this.config, this.logger, { listenAfterSync, signal: this.abort.signal });
    } catch (err) {
      if (this.stopping) process.exit(0);
      this.logger.error({ err }, 'proxy worker failed to start');
      const code = isSwitchboardError(err) ? err.code : undefined;
      const message = err instanceof Error ? err.message : String(err);
      send({ sb: 'failed', ...(code === undefined ? {} : { code }), message }, () => process.exit(1));
      return;
    }
    if (this.stopping) return this.finish();
    send({ sb: 'listening', address: this.plane.address });
    untilReady(this.plane.proxy, this.abort.signal).then(
      () => send({ sb: 'ready' }),
      () => undefined, // stopped first
    );
  }

  /** Idempotent; a start still running sees `stopping` and finishes the job. */
  stop(reason: string): void {
    if (this.stopping) return;
    this.stopping = true;
    this.abort.abort();
    this.logger.info({ reason }, 'proxy worker draining');
    setTimeout(() => process.exit(1), this.config.proxy.drain + EXIT_GRACE_MS).unref();
    if (this.plane) void this.finish();
  }

  /** The primary reloaded the configuration: apply what can change live, say what was. */
  reload(id: number, config: SwitchboardConfig): void {
    try {
      const report: ReloadReport = this.plane ? this.plane.proxy.reconfigure(config.proxy, config.domain, config.notify) : { applied: [], restartRequired: ['proxy'] };
      if (config.logLevel !== this.logger.level) setLogLevel(this.logger, config.logLevel);
      send({ sb: 'answer', id, value: report });
    } catch (err) {
      send({ sb: 'answer', id, error: err instanceof Error ? err.message : String(err) });
    }
  }

  async answer(id: number, what: AskWhat): Promise<void> {
    try {
      send({ sb: 'answer', id, value: await this.value(what) });
    } catch (err) {
      send({ sb: 'answer', id, error: err instanceof Error ? err.message : String(err) });
    }
  }

  private value(what: AskWhat): unknown {
    switch (what) {
      case 'metrics':
        return registry.getMetricsAsJSON();
      case 'catalog':
        return this.plane?.catalog() ?? { rev: 0, services: {} };
      case 'status':
        return this.status();
    }
  }

  private async status(): Promise<WorkerStatus> {
    const metric = registry.getSingleMetric(REQUESTS);
    const values = metric ? (await metric.get()).values : [];
    const proxy = this.plane?.proxy;
    return { requests: values.reduce((n, v) => n + v.value, 0), rev: proxy?.cache.rev ?? 0, ready: proxy?.isReady() === true };
  }

  private async finish(): Promise<void> {
    try {
      await this.plane?.stop();
      process.exit(0);
    } catch (err) {
      this.logger.error({ err }, 'proxy worker shutdown failed');
      process.exit(1);
    }
  }
}

function send(message: FromWorker, then?: () => void): void {
  if (!process.connected || !process.send) {
    then?.();
    return;
  }
  // With a callback, a channel closing under us is reported here rather than thrown.
  process.send(message, undefined, undefined, () => then?.());
}

/** Wires a forked worker: everything starts with the primary's `start` message. */
export function runProxyWorker(): void {
  let worker: ProxyWorker | undefined;
  process.on('message', (message: unknown) => {
    if (!isToWorker(message)) return;
    if (message.sb === 'start' && worker === undefined) {
      const logger = createLogger(message.config.logLevel).child({ role: 'proxy', worker: message.worker });
      installCrashHandlers(logger);
      collectProcessMetrics();
      const started = new ProxyWorker(message.config, logger);
      worker = started;
      // First signal: drain; a second one means "now", as in the CLI.
      onStopSignals(logger, 'drain', (signal) => started.stop(signal));
      void started.start(message.listenAfterSync);
    } else if (message.sb === 'ask') {
      void worker?.answer(message.id, message.what);
    } else if (message.sb === 'reload') {
      worker?.reload(message.id, message.config);
    } else if (message.sb === 'stop') {
      worker?.stop('primary');
    }
  });
}

if (require.main === module && cluster.isWorker) runProxyWorker();
