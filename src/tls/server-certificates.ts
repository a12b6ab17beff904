import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { createSecureContext, type SecureContext, type SecureVersion, type Server as TlsServer } from 'node:tls';
import type { ListenerTlsConfig } from '../config/types';
import { SwitchboardError } from '../errors';
import type { Logger } from '../log';

/**
 * The certificates one TLS listener serves (proxy, registry API, admin): several PEM
 * certificate/key pairs, each answering the names of its certificate (subjectAltName DNS
 * entries, or the CN without any), chosen by the client's SNI — exact names first, then a
 * `*.example.com` wildcard for one label, then the first pair (the default, also for clients
 * that send no SNI).
 *
 * Reloaded when a file changes (polled: certbot and Kubernetes replace files through renames
 * and symlinks, which `fs.watch` loses) and on demand (SIGHUP, `POST /reload`). A reload that
 * fails — a half-written file, a key that does not match its certificate — keeps every
 * certificate as it was; open connections never notice a reload either way.
 */

type CertificatePair = ListenerTlsConfig['certificates'][number];

interface Loaded {
  readonly names: readonly string[];
  readonly context: SecureContext;
  /** PEM, for the listener's default context (`setSecureContext`). */
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly notAfter: Date;
}

/** Whether a listener with these settings speaks TLS: it does once it has a certificate. */
export function servesTls(tls: ListenerTlsConfig | undefined): tls is ListenerTlsConfig {
  return tls !== undefined && tls.certificates.length > 0;
}

/** How often certificate files are checked for changes. */
export const CERTIFICATE_POLL_MS = 1000;

export class ServerCertificates {
  private loaded: Loaded[];
  private exact = new Map<string, Loaded>();
  private wildcard = new Map<string, Loaded>();
  private watching = false;
  private onChange: (() => void) | undefined;

  /** Throws config_invalid naming the file and the reason. */
  constructor(
    private config: ListenerTlsConfig,
    private readonly field: string,
  ) {
    this.loaded = config.certificates.map((pair, i) => loadPair(pair, config.minVersion, `${field}.certificates[${i}]`));
    this.index();
  }

  /** Options for `tls.createServer` and friends: the default pair, SNI for the others. */
  serverOptions(): { cert: Buffer; key: Buffer; minVersion: SecureVersion; SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void } {
    const first = this.loaded[0];
    return { cert: first.cert, key: first.key, minVersion: this.config.minVersion, SNICallback: this.sniCallback };
  }

  /** The context for a client's SNI name (lower-cased; the default when nothing matches). */
  contextFor(servername: string): SecureContext {
    const name = servername.toLowerCase();
    const exact = this.exact.get(name);
    if (exact !== undefined) return exact.context;
    const dot = name.indexOf('.');
    const wild = dot > 0 ? this.wildcard.get(name.slice(dot + 1)) : undefined;
    return (wild ?? this.loaded[0]).context;
  }

  /** Names each pair answers, in order (admin, logs). */
  get names(): string[][] {
    return this.loaded.map((l) => [...l.names]);
  }

  /** The earliest expiry among the pairs (a metric, logs). */
  get earliestExpiry(): Date {
    return this.loaded.reduce((min, l) => (l.notAfter < min ? l.notAfter : min), this.loaded[0].notAfter);
  }

  /** The settings in force (the last ones that loaded). */
  get settings(): ListenerTlsConfig {
    return this.config;
  }

  /**
   * Re-reads every file — of `config` when a reload brings new settings. All or nothing: an
   * error leaves every certificate (and the settings) as they were and is returned.
   * `applyDefault` gets the new default pair (for `server.setSecureContext`).
   */
  reload(applyDefault: (options: { cert: Buffer; key: Buffer; minVersion: SecureVersion }) => void, config: ListenerTlsConfig = this.config): SwitchboardError | undefined {
    let next: Loaded[];
    try {
      next = config.certificates.map((pair, i) => loadPair(pair, config.minVersion, `${this.field}.certificates[${i}]`));
    } catch (err) {
      return err as SwitchboardError;
    }
    const rewatch = this.watching && this.onChange !== undefined && JSON.stringify(config.certificates) !== JSON.stringify(this.config.certificates);
    const onChange = this.onChange;
    if (rewatch) this.close();
    this.config = config;
    if (rewatch && onChange !== undefined) this.watch(onChange);
    this.loaded = next;
    this.index();
    applyDefault({ cert: next[0].cert, key: next[0].key, minVersion: this.config.minVersion });
    return undefined;
  }

  /** Calls `changed` when any certificate or key file changes on disk (until `close`). */
  watch(changed: () => void): void {
    if (this.watching) return;
    this.watching = true;
    this.onChange = changed;
    for (const file of this.files()) {
      watchFile(file, { interval: CERTIFICATE_POLL_MS, persistent: false }, (now: Stats, before: Stats) => {
        if (now.mtimeMs !== before.mtimeMs || now.size !== before.size || now.ino !== before.ino) changed();
      });
    }
  }

  close(): void {
    if (!this.watching) return;
    this.watching = false;
    for (const file of this.files()) unwatchFile(file);
  }

  private files(): string[] {
    return [...new Set(this.config.certificates.flatMap((p) => [p.certFile, p.keyFile]))];
  }

  private readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, this.contextFor(servername));
  };

  private index(): void {
    const exact = new Map<string, Loaded>();
    const wildcard = new Map<string, Loaded>();
    for (const loaded of this.loaded) {
      for (const name of loaded.names) {
        // The first pair naming a host wins, as the first matching server block does in nginx.
        if (name.startsWith('*.')) {
          if (!wildcard.has(name.slice(2))) wildcard.set(name.slice(2), loaded);
        } else if (!exact.has(name)) exact.set(name, loaded);
      }
    }
    this.exact = exact;
    this.wildcard = wildcard;
  }
}

/**
 * Keeps a listening TLS server's certificates fresh: reloads on file changes, and returns the
 * reload for SIGHUP / POST /reload (with new settings, if a reload brought some). Logged
 * either way; a failure keeps the old certificates and is returned.
 */
export type CertificateReloader = (why: string, settings?: ListenerTlsConfig) => SwitchboardError | undefined;

export function serveCertificates(server: TlsServer, certificates: ServerCertificates, logger: Logger): CertificateReloader {
  const reload = (why: string, settings?: ListenerTlsConfig): SwitchboardError | undefined => {
    const error = certificates.reload((defaults) => server.setSecureContext(defaults), settings);
    if (error !== undefined) logger.error({ err: error, why }, 'certificates not reloaded: the old ones stay');
    else logger.info({ why, names: certificates.names, notAfter: certificates.earliestExpiry.toISOString() }, 'certificates reloaded');
    return error;
  };
  certificates.watch(() => reload('files changed'));
  return reload;
}

/** A reload on request (SIGHUP, POST /reload), as the reload answer reports it: not served with TLS, reloaded, or why not. */
export function reloadOnRequest(reload: CertificateReloader | undefined): { reloaded: boolean; error?: string } {
  if (reload === undefined) return { reloaded: false };
  const error = reload('reload');
  return error === undefined ? { reloaded: true } : { reloaded: false, error: error.message };
}

function loadPair(pair: CertificatePair, minVersion: SecureVersion, field: string): Loaded {
  const cert = readPem(pair.certFile, `${field}.certFile`);
  const key = readPem(pair.keyFile, `${field}.keyFile`);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw invalid(`${field}.certFile`, `${pair.certFile}: not a PEM certificate (${(err as Error).message})`);
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not belong to the certificate');
  } catch (err) {
    throw invalid(`${field}.keyFile`, `${pair.keyFile}: ${(err as Error).message}`);
  }
  let context: SecureContext;
  try {
    context = createSecureContext({ cert, key, minVersion });
  } catch (err) {
    throw invalid(`${field}.certFile`, `${pair.certFile}: ${(err as Error).message}`);
  }
  return { names: namesOf(x509), context, cert, key, notAfter: new Date(x509.validTo) };
}

function readPem(file: string, field: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw invalid(field, `${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** DNS names of the subjectAltName (lower case), or the CN when there is none. */
export function namesOf(x509: X509Certificate): string[] {
  const san = x509.subjectAltName;
  if (san !== undefined) {
    const names = san
      .split(', ')
      .filter((entry) => entry.startsWith('DNS:'))
      .map((entry) => entry.slice(4).toLowerCase());
    if (names.length > 0) return names;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn !== undefined ? [cn.toLowerCase()] : [];
}

function invalid(field: string, reason: string): SwitchboardError {
  return new SwitchboardError('config_invalid', `${field}: ${reason}`, { field });
}
