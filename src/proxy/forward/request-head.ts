import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { BlockList, isIP } from 'node:net';
import { SwitchboardError } from '../../errors';
import { nominatedHeaders, removeHeaders } from './header-list';
import { normalizeTarget } from './request-target';

/**
 * A client request's head, read once from `rawHeaders` (node's lazy `headers` object is
 * never built on this path) and checked before routing:
 *
 *  - at most `maxHeaders` header lines (431: node would silently drop lines past its own cap
 *    while its parser still frames the body by them);
 *  - exactly one Host, in the hostname grammar, when one is sent (HTTP/1.1 requires it;
 *    node refuses a request without one);
 *  - the target normalised (request-target.ts).
 *
 * The headers for the upstream come out of the same pass, in the client's order, without
 * hop-by-hop headers (RFC 9110 §7.6.1: Connection and every header it names, Keep-Alive,
 * Proxy-*, TE other than `trailers`, Trailer, Transfer-Encoding, Upgrade) — but Host and the
 * framing (Content-Length) are never dropped, whatever Connection names. `Expect` is ours to
 * answer. X-Forwarded-For/-Host/-Proto and Forwarded are kept only from trusted peers.
 */
export interface RequestHead {
  /** The Host header as sent ('' without one). */
  readonly host: string;
  /** The normalised target: what is routed and forwarded. */
  readonly target: string;
  readonly requestId: string;
  /** Content-Length, -1 for a chunked body, 0 without a body. */
  readonly bodyLength: number;
  /** The client sent `Expect: 100-continue`. */
  readonly expectContinue: boolean;
  /** Flat [name, value, …] for the upstream, X-Forwarded-* and x-request-id included. */
  readonly headers: string[];
}

export interface RequestHeadOptions {
  maxHeaders: number;
  /** Peers whose X-Forwarded-* / Forwarded headers are believed; undefined = nobody. */
  trustedProxies: TrustedProxies | undefined;
}

/** Envoy's `xff_num_trusted_hops` by address: a list of CIDRs (`10.0.0.0/8`, `::1/128`, `127.0.0.1`). */
export class TrustedProxies {
  private readonly list = new BlockList();

  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const [address, bits] = cidr.split('/');
      const family = isIP(address);
      if (family === 0) throw new SwitchboardError('config_invalid', `trusted proxy "${cidr}" is not an address or CIDR`, { field: 'proxy.trustedProxies' });
      const type = family === 6 ? 'ipv6' : 'ipv4';
      const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
        throw new SwitchboardError('config_invalid', `trusted proxy "${cidr}" has a bad prefix length`, { field: 'proxy.trustedProxies' });
      }
      this.list.addSubnet(address, prefix, type);
    }
  }

  trusts(address: string | undefined): boolean {
    if (address === undefined) return false;
    return this.list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings']);
const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded']);
/** Connection may not take these away: they frame or address the message. */
const NEVER_NOMINATED = new Set(['host', 'content-length', 'transfer-encoding']);

export function readRequestHead(req: IncomingMessage, options: RequestHeadOptions): RequestHead | SwitchboardError {
  const raw = req.rawHeaders;
  // HTTP/2: the pseudo-headers come first (node checked them); the others are read as HTTP/1's.
  let pseudo = 0;
  let authority: string | undefined;
  if (req.httpVersionMajor === 2) {
    for (; pseudo * 2 < raw.length && raw[pseudo * 2].charCodeAt(0) === 0x3a; pseudo++) {
      if (raw[pseudo * 2] === ':authority') authority = raw[pseudo * 2 + 1];
    }
  }
  if (raw.length / 2 - pseudo > options.maxHeaders) {
    return new SwitchboardError('too_many_headers', `more than ${options.maxHeaders} request header lines`);
  }
  const target = normalizeTarget(req.url ?? '/');
  if (typeof target !== 'string') return target;
  const peer = peerAddress(req);
  const trusted = options.trustedProxies?.trusts(peer) ?? false;
  const headers: string[] = [];
  let host = '';
  let hosts = 0;
  let requestId = '';
  let bodyLength = 0;
  let expectContinue = false;
  let nominated: string[] | undefined;
  let priorFor: string | undefined;
  let priorHost: string | undefined;
  let priorProto: string | undefined;
  for (let i = pseudo * 2; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    const lower = name.toLowerCase();
    if (lower === 'host') {
      hosts++;
      host = value;
    } else if (HOP_BY_HOP.has(lower)) {
      if (lower === 'transfer-encoding') bodyLength = -1;
      else if (lower === 'connection') nominated = nominatedHeaders(value, NEVER_NOMINATED, nominated);
      continue;
    } else if (lower === 'content-length') {
      if (bodyLength === 0) bodyLength = Number(value);
    } else if (lower === 'te') {
      if (value.trim().toLowerCase() !== 'trailers') continue;
    } else if (lower === 'expect') {
      expectContinue = value.trim().toLowerCase() === '100-continue';
      continue;
    } else if (lower === 'x-request-id') {
      if (value.length === 0 || value.length > 200 || requestId !== '') continue;
      requestId = value;
    } else if (FORWARDED.has(lower)) {
      if (!trusted) continue;
      if (lower === 'x-forwarded-for') {
        priorFor = priorFor === undefined ? value : `${priorFor}, ${value}`;
        continue;
      }
      if (lower === 'x-forwarded-host') priorHost ??= value;
      else if (lower === 'x-forwarded-proto') priorProto ??= value;
      if (lower !== 'forwarded') continue;
    }
    headers.push(name, value);
  }
  if (hosts > 1) return new SwitchboardError('bad_request', 'more than one Host header', { field: 'host' });
  if (authority !== undefined) {
    // RFC 9113 §8.3.1: a Host that differs from :authority makes the request malformed.
    if (hosts === 1 && host !== authority) return new SwitchboardError('bad_request', 'Host differs from :authority', { field: 'host' });
    if (hosts === 0) headers.push('host', authority);
    host = authority;
    hosts = 1;
  }
  if (hosts === 1 && !isHostHeader(host)) return new SwitchboardError('bad_request', `Host ${JSON.stringify(host.slice(0, 100))} is not a valid host[:port]`, { field: 'host' });
  // HTTP/2 frames a body without Content-Length: its DATA frames are streamed on (chunked).
  if (pseudo > 0 && bodyLength === 0 && !(req as unknown as Http2ServerRequest).stream.endAfterHeaders) bodyLength = -1;
  if (nominated !== undefined) removeHeaders(headers, nominated);
  if (requestId === '') {
    requestId = randomUUID();
    headers.push('x-request-id', requestId);
  }
  if (peer !== undefined) headers.push('x-forwarded-for', priorFor === undefined ? peer : `${priorFor}, ${peer}`);
  const proto = priorProto ?? ('encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http');
  headers.push('x-forwarded-proto', proto);
  const forwardedHost = priorHost ?? host;
  if (forwardedHost !== '') headers.push('x-forwarded-host', forwardedHost);
  return { host, target, requestId, bodyLength, expectContinue, headers };
}

/** The client's address, IPv4-mapped IPv6 shown as IPv4. */
export function peerAddress(req: IncomingMessage): string | undefined {
  const address = req.socket.remoteAddress;
  return address?.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * `name[:port]` where name is a DNS-style host (letters, digits, `-`, `_`, `.`), or
 * `[v6]` with an optional port. The empty string is not a host.
 */
export function isHostHeader(value: string): boolean {
  const length = value.length;
  if (length === 0 || length > 300) return false;
  let end = length;
  if (value.charCodeAt(0) === 0x5b /* [ */) {
    const close = value.indexOf(']');
    if (close < 0 || isIP(value.slice(1, close)) !== 6) return false;
    return close === length - 1 || isPort(value, close + 1);
  }
  const colon = value.indexOf(':');
  if (colon >= 0) {
    if (!isPort(value, colon)) return false;
    end = colon;
  }
  if (end === 0) return false;
  for (let i = 0; i < end; i++) {
    const c = value.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f;
    if (!ok) return false;
  }
  return true;
}

/** `:` followed by 1–5 digits at `at`, to the end of `value`. */
function isPort(value: string, at: number): boolean {
  if (value.charCodeAt(at) !== 0x3a) return false;
  const digits = value.length - at - 1;
  if (digits < 1 || digits > 5) return false;
  for (let i = at + 1; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}
