import { nominatedHeaders, removeHeaders } from './header-list';

/**
 * An upstream's response head, made fit for the client — or refused. Node's `writeHead`
 * throws on a status outside 100–999, a control character in the reason phrase, or a
 * `Trailer` header it cannot honour (with Content-Length, on 204/304, to an HTTP/1.0
 * client); thrown there, inside the exchange, it used to end the process. Checked here
 * first, and refused as `upstream_invalid_response` (dispatch.ts still guards `writeHead`).
 *
 * Hop-by-hop headers describe the upstream's connection to us and are dropped (RFC 9110
 * §7.6.1), with every header the upstream's Connection names. Trailers are dropped too, as
 * Envoy does for HTTP/1 by default: `Trailer` goes, and node re-frames the body (chunked to
 * an HTTP/1.1 client, close-delimited to HTTP/1.0), so `Transfer-Encoding: identity` or any
 * other framing of the upstream's never reaches the client.
 */

/** Why `status`/`reason` cannot be relayed, or undefined when they can. */
export function invalidStatusLine(status: number, reason: string): string | undefined {
  if (!(status >= 200 && status <= 999) || !Number.isInteger(status)) return `status ${status} cannot be a final response`;
  for (let i = 0; i < reason.length; i++) {
    const c = reason.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return `reason phrase has byte 0x${c.toString(16).padStart(2, '0')}`;
  }
  return undefined;
}

/** 1xx that are only informational (not 101): the final response follows; skip them. */
export function isInformational(status: number): boolean {
  return status >= 100 && status < 200 && status !== 101;
}

/** Framing stays whatever Connection names: node re-frames anyway, and Content-Length is the upstream's own. */
const KEEP_FRAMING: ReadonlySet<string> = new Set(['content-length']);

// http2-settings too: connection-specific in HTTP/2 (RFC 9113 §8.2.2), where node refuses it.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings']);

/**
 * The upstream's raw header lines (latin1 bytes, as they came) as a flat [name, value, …]
 * list for `writeHead`: names keep their case, repeats stay separate, order is kept. The
 * request id is added unless the upstream sent one.
 */
export function clientResponseHeaders(raw: readonly Buffer[], requestId: string): string[] {
  const headers: string[] = [];
  let hasRequestId = false;
  let nominated: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1');
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') nominated = nominatedHeaders(raw[i + 1].toString('latin1'), KEEP_FRAMING, nominated);
      continue;
    }
    if (lower === 'x-request-id') hasRequestId = true;
    headers.push(name, raw[i + 1].toString('latin1'));
  }
  if (nominated !== undefined) removeHeaders(headers, nominated);
  if (!hasRequestId) headers.push('x-request-id', requestId);
  return headers;
}
