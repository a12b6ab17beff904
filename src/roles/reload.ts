import type { SwitchboardConfig } from '../config/types';
import { isSwitchboardError } from '../errors';
import { setLogLevel, type Logger } from '../log';
import type { ReloadReport } from '../config/types';

/**
 * Live reload (SIGHUP, or POST /reload on the admin listener): the configuration is read
 * again from the same file, environment and flags as at start. An invalid one changes nothing
 * and is reported with its field path. A valid one is handed to `apply` (the proxy: routes,
 * policies, timeouts, limits…), which says what it applied and what needs a restart; every
 * other section that differs (listen addresses, the store, the registry's settings) is
 * reported as needing a restart and left as it was. The log level applies to every logger.
 */
export type ReloadOutcome =
  | { status: 'reloaded'; applied: string[]; restartRequired: string[]; failed?: string[] }
  | { status: 'rejected'; error: string; field?: string; message: string };

export type ApplyConfig = (next: Readonly<SwitchboardConfig>) => ReloadReport | Promise<ReloadReport>;

/** A listener's certificate files read again: reloaded (it has TLS and they loaded), or the error. */
export type CertificateReload = () => { reloaded: boolean; error?: string };

/** Sections applied live (the proxy's by `apply`, the log level here); any other change needs a restart. */
const APPLIED_LIVE = new Set(['proxy', 'notify', 'domain', 'logLevel']);

/**
 * `certificates`: listeners (besides the proxy's, which `apply` covers) whose certificate
 * files are read again on every reload — their TLS settings need a restart, their files not.
 */
export function configReloader(
  initial: Readonly<SwitchboardConfig>,
  load: () => Readonly<SwitchboardConfig>,
  apply: ApplyConfig,
  logger: Logger,
  certificates: () => Array<[field: string, CertificateReload]> = () => [],
): () => Promise<ReloadOutcome> {
  // Sections that need a restart are compared with what the process started with: it still runs them.
  let level = initial.logLevel;
  return async () => {
    let next: Readonly<SwitchboardConfig>;
    try {
      next = load();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const field = isSwitchboardError(err) ? err.field : undefined;
      logger.error({ err, field }, 'configuration reload rejected: nothing changed');
      return { status: 'rejected', error: isSwitchboardError(err) ? err.code : 'config_invalid', ...(field === undefined ? {} : { field }), message };
    }
    const { applied, restartRequired, failed = [] } = await apply(next);
    for (const [field, reloadCertificates] of certificates()) {
      const { reloaded, error } = reloadCertificates();
      if (reloaded) applied.push(`${field}.certificates`);
      if (error !== undefined) failed.push(`${error} (the old certificates stay)`);
    }
    if (next.logLevel !== level) {
      setLogLevel(logger, next.logLevel);
      level = next.logLevel;
      applied.push('logLevel');
    }
    for (const key of Object.keys(next) as Array<keyof SwitchboardConfig>) {
      if (!APPLIED_LIVE.has(key) && JSON.stringify(next[key]) !== JSON.stringify(initial[key])) restartRequired.push(key);
    }
    logger.info({ applied, restartRequired, failed }, restartRequired.length > 0 ? 'configuration reloaded; some changes need a restart' : 'configuration reloaded');
    return { status: 'reloaded', applied, restartRequired, ...(failed.length > 0 ? { failed } : {}) };
  };
}
