import type { Logger } from '../log';

/**
 * Process-wide hooks shared by the CLI's process and each proxy cluster worker: a crash is
 * logged once and exits 1; the first SIGTERM/SIGINT stops gracefully, a second one means "now".
 */

export function installCrashHandlers(logger: Logger): void {
  const crash = (err: unknown, kind: string): void => {
    logger.fatal({ err }, kind);
    process.exit(1);
  };
  process.on('uncaughtException', (err) => crash(err, 'uncaught exception'));
  process.on('unhandledRejection', (err) => crash(err, 'unhandled rejection'));
}

/** Calls `stop` on the first SIGTERM/SIGINT; a second signal exits 1 without finishing `what`. */
export function onStopSignals(logger: Logger, what: string, stop: (signal: NodeJS.Signals) => void): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger.warn({ signal }, `second signal: exiting without finishing the ${what}`);
      process.exit(1);
    }
    signalled = true;
    stop(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
