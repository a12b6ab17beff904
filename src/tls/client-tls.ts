import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import { SwitchboardError } from '../errors';

/**
 * TLS for connections Switchboard opens (to HTTPS upstreams, to an HTTPS registry): which CAs
 * to trust, an optional client certificate (mTLS), and — only where a setting says so
 * explicitly — no verification at all. Files are read once, when the setting is loaded, so a
 * bad path fails at startup (or at reload) with its field, never on a request.
 */
export interface ClientTlsConfig {
  /** PEM bundle of the CAs to trust; empty = the system's (Node's bundled) roots. */
  caFile?: string;
  /** Client certificate and key (PEM) for upstreams that require mTLS; both or neither. */
  certFile?: string;
  keyFile?: string;
  /** Name checked against the certificate (and sent as SNI) instead of the instance's address. */
  serverName?: string;
  /** Accept any certificate. Only ever from an explicit per-service setting. */
  skipVerify?: boolean;
}

/** The options for `tls.connect` (and undici's `connect`), files read now. */
export function clientTlsOptions(config: ClientTlsConfig, field: string): ConnectionOptions {
  if ((config.certFile === undefined) !== (config.keyFile === undefined)) {
    throw new SwitchboardError('config_invalid', `${field}: certFile and keyFile go together`, { field });
  }
  const options: ConnectionOptions = { rejectUnauthorized: config.skipVerify !== true };
  if (config.caFile) options.ca = readFile(config.caFile, `${field}.caFile`);
  if (config.certFile && config.keyFile) {
    options.cert = readFile(config.certFile, `${field}.certFile`);
    options.key = readFile(config.keyFile, `${field}.keyFile`);
  }
  if (config.serverName) options.servername = config.serverName;
  return options;
}

function readFile(file: string, field: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new SwitchboardError('config_invalid', `${field}: ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { field });
  }
}

/**
 * The dispatcher for requests to the registry API (`switchboard proxy`, `switchboard
 * register`): verifies an https:// registry against `caFile` (the `caFile` setting, or
 * CONSUL_CACERT); undefined without one (Node's bundled roots, as fetch uses by default).
 */
export function registryDispatcher(caFile: string | undefined): Dispatcher | undefined {
  if (caFile === undefined) return undefined;
  return new Agent({ connect: clientTlsOptions({ caFile }, 'caFile') as Record<string, unknown> });
}
