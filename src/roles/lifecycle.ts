import type { ReloadOutcome } from './reload';
import { SwitchboardError, isSwitchboardError } from '../errors';
import type { ListenerTlsConfig } from '../config/types';
import type { Logger } from '../log';
import { servesTls } from '../tls/server-certificates';
import { startAdmin, type AdminOptions, type AdminServer } from './admin';

/**
 * What every role does around its components: start listeners with a one-line error that
 * names the flag, log where each listens, and stop what was started in reverse order.
 */

/** A started role (or component): `stop()` drains and releases everything it holds. */
export interface Stoppable {
  stop(): Promise<void>;
}

/** A started role with the addresses it actually bound. */
export interface RunningRole<A> extends Stoppable {
  readonly addresses: A;
  /** SIGHUP: re-read and apply the configuration (roles that can). */
  reload?: () => ReloadOutcome | Promise<ReloadOutcome>;
}

/** What a role's start gets: where to push what it started, and whether stop() has begun. */
export interface RoleStart {
  readonly stack: StopStack;
  /** True from the moment stop() is called, so /readyz turns false before anything closes. */
  readonly draining: () => boolean;
}

/** Runs a role's start; a start that fails part-way stops what it had started before the error goes on. */
export async function startRole<A>(logger: Logger, start: (role: RoleStart) => Promise<A>): Promise<RunningRole<A>> {
  const stack = new StopStack(logger);
  let draining = false;
  const addresses = await unwindOnFailure(stack, () => start({ stack, draining: () => draining }));
  return {
    addresses,
    stop: () => {
      draining = true;
      return stack.unwind();
    },
  };
}

/** On failure, unwinds `stack` (what `start` had pushed so far), then rethrows. */
export async function unwindOnFailure<T>(stack: StopStack, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    await stack.unwind();
    throw err;
  }
}

/**
 * The role's admin listener, not ready while draining. Roles start it before their other
 * components so a probe sees "not ready" rather than "connection refused".
 */
export async function startRoleAdmin(role: RoleStart, options: AdminOptions): Promise<AdminServer> {
  const admin = await listen('admin', options.listen, () =>
    startAdmin({ ...options, isReady: () => !role.draining() && options.isReady() }),
  );
  role.stack.push('admin', () => admin.close());
  logListening(options.logger, 'admin', admin.address, options.tls);
  return admin;
}

export type Listener = 'api' | 'proxy' | 'admin' | 'dns';

const LISTEN_FLAG: Record<Listener, string> = { api: '--api-listen', proxy: '--proxy-listen', admin: '--admin-listen', dns: '--dns-listen' };

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

/**
 * Tests and operators find the real ports (when asked for port 0) in these lines, and for an
 * HTTP listener the URL that reaches it (https once it has a certificate).
 */
export function logListening(logger: Logger, listener: Listener, address: string, tls?: ListenerTlsConfig): void {
  if (listener === 'dns') logger.info({ listener, address }, 'listening');
  else logger.info({ listener, address, url: `${servesTls(tls) ? 'https' : 'http'}://${address}` }, 'listening');
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
