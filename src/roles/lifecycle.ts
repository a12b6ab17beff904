import { SwitchboardError, isSwitchboardError } from '../errors';
import type { Logger } from '../log';

/**
 * What every role does around its components: start listeners with a one-line error that
 * names the flag, log where each listens, and stop what was started in reverse order.
 */

export type Listener = 'api' | 'proxy' | 'admin';

const LISTEN_FLAG: Record<Listener, string> = { api: '--api-listen', proxy: '--proxy-listen', admin: '--admin-listen' };

/** Runs a listener's start and turns a bind failure into one line that names the flag. */
export async function listen<T>(listener: Listener, address: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const reason = bindFailure(err);
    if (reason === undefined) throw err;
    throw new SwitchboardError('address_in_use', `cannot listen on ${address} (${LISTEN_FLAG[listener]}): ${reason}`, { cause: err });
  }
}

const BIND_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this machine',
  ENOTFOUND: 'unknown host',
};

/** Looks through `cause` chains too: components may wrap the socket error in their own. */
function bindFailure(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (isSwitchboardError(e, 'address_in_use')) return BIND_ERRORS.EADDRINUSE;
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== undefined && code in BIND_ERRORS) return BIND_ERRORS[code];
  }
  return undefined;
}

/** Tests and operators find the real ports (when asked for port 0) in these lines. */
export function logListening(logger: Logger, listener: Listener, address: string): void {
  logger.info({ listener, address }, 'listening');
}

/** What has been started, stopped in reverse order; safe to unwind after a half-done start. */
export class StopStack {
  private readonly entries: Array<{ name: string; stop: () => Promise<void> }> = [];
  private unwinding?: Promise<void>;

  constructor(private readonly logger: Logger) {}

  push(name: string, stop: () => Promise<void>): void {
    this.entries.push({ name, stop });
  }

  unwind(): Promise<void> {
    this.unwinding ??= this.stopAll();
    return this.unwinding;
  }

  private async stopAll(): Promise<void> {
    let firstError: unknown;
    for (const { name, stop } of this.entries.reverse()) {
      try {
        await stop();
        this.logger.debug({ component: name }, 'stopped');
      } catch (err) {
        // Keep going: the store must still flush and release its lock.
        this.logger.error({ err, component: name }, 'stop failed');
        firstError ??= err;
      }
    }
    if (firstError !== undefined) throw firstError;
  }
}
