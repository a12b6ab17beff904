import { randomUUID } from 'node:crypto';
import http, { STATUS_CODES, type Agent, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex, Stream } from 'node:stream';
import httpProxy from 'http-proxy';
import type { SwitchboardError } from '../errors';
import type { Exchange } from './exchange';
import type { Tunnel } from './websocket';

/**
 * "Forward this request once", over `http-proxy` (the only module that knows it: the package
 * is barely maintained, so it stays swappable behind `Forwarder`), and the helpers every path
 * shares (request ids, forwarded headers, JSON errors). Retries, outlier accounting and metrics
 * wrap it in exchange.ts, retry.ts and health/passive.ts; WebSocket tunnels in websocket.ts.
 *
 * One `proxy.web()` call is one attempt, always with `selfHandleResponse`: the exchange decides
 * on `proxyRes` whether to retry or to relay the response itself. http-proxy's events reach
 * the request's owner (`req.exchange`, `req.tunnel`) through module-level listeners, so an
 * attempt adds no closures of ours to the ones http-proxy makes.
 */

/** The proxy server's request class (pass it to http.createServer). */
export class ProxyRequest extends http.IncomingMessage {
  exchange: Exchange | undefined = undefined;
  tunnel: Tunnel | undefined = undefined;
}

/**
 * Where one attempt goes. A new object per attempt: http-proxy's `error` event names the
 * target, and identity is how a late error of an abandoned attempt is told apart.
 */
export interface UpstreamTarget {
  readonly host: string;
  readonly port: number;
}

/**
 * http-proxy's `buffer` option, "a stream to send as the request body": it only calls
 * `pipe(proxyReq)`, synchronously inside `web()`, right after creating the upstream request.
 * The owner writes the body there (or arranges to), which also hands it the request.
 */
export interface RequestBodySource {
  pipe(proxyReq: ClientRequest): ClientRequest;
}

/** Who hears about one attempt (exchange.ts). Events of an attempt it gave up on must be ignored. */
export interface AttemptOwner extends RequestBodySource {
  /** The upstream request got its socket (connecting, or reused from the pool). */
  attemptSocket(proxyReq: ClientRequest): void;
  attemptResponse(proxyRes: IncomingMessage): void;
  attemptError(target: UpstreamTarget, err: Error): void;
}

/** Where `relayBody` sends an upstream response's body. */
export interface ResponseSink {
  responseData(chunk: Buffer): void;
  responseEnd(): void;
  /** The response closed: after its end (`complete`), or cut mid-body. */
  responseClosed(proxyRes: IncomingMessage): void;
}

/** Who hears about a WebSocket upgrade (websocket.ts). */
export interface UpgradeOwner {
  upgradeSent(proxyReq: ClientRequest, req: ProxyRequest): void;
  upgradeFailed(err: Error, req: ProxyRequest): void;
}

interface WithWebPasses {
  webPasses?: Array<{ name: string }>;
}

export class Forwarder {
  private readonly proxy: httpProxy<ProxyRequest, ServerResponse>;

  constructor() {
    // xfwd off: X-Forwarded-* are set by setForwardedHeaders (appending to X-Forwarded-For,
    // keeping an earlier hop's Proto and Host). toProxy and no prependPath: the path goes
    // out as the router left it, without a url.parse per request (web() goes further, see
    // setPath).
    this.proxy = httpProxy.createProxyServer<ProxyRequest, ServerResponse>({ selfHandleResponse: true, xfwd: false, toProxy: true, prependPath: false });
    keepOnlyStreamPass(this.proxy);
    // An `error` listener on the proxy, always: without one http-proxy throws (#607).
    this.proxy.on('error', onProxyError);
    // The client's socket is gone: http-proxy aborts the upstream; the exchange ends on `close`.
    this.proxy.on('econnreset', ignoreError);
    this.proxy.on('proxyReq', onProxyReq);
    this.proxy.on('proxyRes', onProxyRes);
    this.proxy.on('proxyReqWs', onProxyReqWs);
  }

  /**
   * Sends `req` to `target` over the upstream's keep-alive agent (without one http-proxy
   * sends `Connection: close`, #929). `body.pipe` is called before this returns, and must
   * set the path (`setPath`): with `ignorePath` http-proxy leaves it to us.
   */
  web(req: ProxyRequest, res: ServerResponse, target: UpstreamTarget, agent: Agent, body: AttemptOwner): void {
    this.proxy.web(req, res, { target, agent, buffer: body as unknown as Stream, ignorePath: true });
  }

  /** No agent: the socket leaves any pool at the upgrade anyway. */
  ws(req: ProxyRequest, socket: Duplex, head: Buffer, target: UpstreamTarget): void {
    this.proxy.ws(req, socket, head, { target });
  }
}

/**
 * Of web-incoming's passes only `stream` is wanted: `XHeaders` and `timeout` would do what we
 * do ourselves, and `deleteLength` rewrites the framing of DELETE and OPTIONS requests (a
 * chunked DELETE body would follow a `Content-Length: 0`, desynchronising the upstream
 * connection). `webPasses` is the list http-proxy's own before()/after() edit.
 */
function keepOnlyStreamPass(proxy: httpProxy<ProxyRequest, ServerResponse>): void {
  const passes = (proxy as unknown as WithWebPasses).webPasses;
  if (!Array.isArray(passes)) return;
  const stream = passes.filter((pass) => pass.name === 'stream');
  if (stream.length === 1) passes.splice(0, passes.length, ...stream);
}

function onProxyReq(proxyReq: ClientRequest, req: ProxyRequest): void {
  req.exchange?.attemptSocket(proxyReq);
}

function onProxyRes(proxyRes: IncomingMessage, req: ProxyRequest): void {
  const exchange = req.exchange;
  if (exchange) exchange.attemptResponse(proxyRes);
  else proxyRes.resume();
}

function onProxyError(err: Error, req: ProxyRequest, _res: unknown, target?: httpProxy.ProxyTargetUrl): void {
  const tunnel = req.tunnel;
  if (tunnel) tunnel.owner.upgradeFailed(err, req);
  else req.exchange?.attemptError(target as unknown as UpstreamTarget, err);
}

function onProxyReqWs(proxyReq: ClientRequest, req: ProxyRequest): void {
  req.tunnel?.owner.upgradeSent(proxyReq, req);
}

/**
 * The upstream request's path, exactly as routing left it. http-proxy's own (its urlJoin)
 * would fold `//` into `/` and `http:/` into `http://`, and was its largest cost per
 * request; with `ignorePath` it makes `/`, and this sets the real one. Called from
 * `pipe`, before anything of the request is written.
 */
export function setPath(proxyReq: ClientRequest, path: string): void {
  if (proxyReq.path !== path) proxyReq.path = path;
}

const SINK = Symbol('switchboard.responseSink');

interface SunkResponse extends IncomingMessage {
  [SINK]?: ResponseSink;
}

/**
 * Streams `proxyRes`'s body to `sink`: what `proxyRes.pipe(res)` would do, with the
 * backpressure left to the sink, but with three module-level listeners where pipe adds
 * seven listeners and about as many closures per response.
 */
export function relayBody(proxyRes: IncomingMessage, sink: ResponseSink): void {
  (proxyRes as SunkResponse)[SINK] = sink;
  proxyRes.on('data', onResponseData);
  proxyRes.on('end', onResponseEnd);
  proxyRes.on('close', onResponseClose);
}

function onResponseData(this: SunkResponse, chunk: Buffer): void {
  this[SINK]?.responseData(chunk);
}

function onResponseEnd(this: SunkResponse): void {
  this[SINK]?.responseEnd();
}

function onResponseClose(this: SunkResponse): void {
  this[SINK]?.responseClosed(this);
}

/**
 * Keeps the client's `x-request-id` or makes one. Responses carry it too: relayed ones
 * through `responseHeaders`, the proxy's own through `requestIdOf`.
 */
export function ensureRequestId(req: IncomingMessage): string {
  let id = req.headers['x-request-id'];
  if (typeof id !== 'string' || id.length === 0 || id.length > 200) {
    id = randomUUID();
    req.headers['x-request-id'] = id;
  }
  return id;
}

/** The request id of the request `res` answers (set by ensureRequestId). */
export function requestIdOf(res: ServerResponse): string {
  const id = res.req.headers['x-request-id'];
  return typeof id === 'string' ? id : '';
}

/** A proxy-generated error: JSON with the stable code; a started response can only be cut. */
export function sendError(res: ServerResponse, error: SwitchboardError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(error.toJSON());
  res.statusCode = error.status;
  res.setHeader('x-request-id', requestIdOf(res));
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}

/** The same JSON error on a raw socket (failed or refused upgrades). */
export function writeRawError(socket: Duplex, error: SwitchboardError): void {
  if (socket.listenerCount('error') === 0) socket.on('error', ignoreError);
  const body = JSON.stringify(error.toJSON());
  const head =
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`;
  socket.end(head + body, () => socket.destroy());
}

/** For sockets and streams we are done with: a late ECONNRESET must not crash the process. */
export function ignoreError(): void {}

/**
 * Connection headers describe the client's hop, not ours: without removing them a client's
 * `Connection: close` would cost us the pooled upstream connection. `Expect` is dropped
 * because node already answered `100 Continue`.
 */
export function prepareRequestHeaders(req: IncomingMessage): void {
  const headers = req.headers;
  if (headers.connection !== undefined) delete headers.connection;
  if (headers['keep-alive'] !== undefined) delete headers['keep-alive'];
  if (headers['proxy-connection'] !== undefined) delete headers['proxy-connection'];
  if (headers.expect !== undefined) delete headers.expect;
  setForwardedHeaders(req);
}

/**
 * The upstream's response headers for the client, as a flat [name, value, …] list from its
 * raw headers: names keep their case, repeated headers stay separate, and node never builds
 * the (lazy) `headers` object. Hop-by-hop headers describe the upstream's connection to us,
 * not ours to the client, so they are dropped; the request id is added unless the upstream
 * sent one.
 */
export function responseHeaders(req: IncomingMessage, proxyRes: IncomingMessage, closing: boolean): string[] {
  const raw = proxyRes.rawHeaders;
  const http10 = req.httpVersion === '1.0';
  const headers: string[] = [];
  let hasRequestId = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (isHopByHop(name, http10)) continue;
    if (name.length === 12 && name.toLowerCase() === 'x-request-id') hasRequestId = true;
    headers.push(name, raw[i + 1]);
  }
  if (!hasRequestId) headers.push('x-request-id', req.headers['x-request-id'] as string);
  if (closing) headers.push('connection', 'close');
  return headers;
}

/** Checked by length first: most header names are neither. */
function isHopByHop(name: string, http10: boolean): boolean {
  if (name.length === 10) {
    const lower = name.toLowerCase();
    return lower === 'connection' || lower === 'keep-alive';
  }
  // An HTTP/1.0 client cannot read chunked encoding; node ends the body by closing instead.
  return http10 && name.length === 17 && name.toLowerCase() === 'transfer-encoding';
}

/** X-Forwarded-For gets the client appended; Proto and Host are kept when an earlier hop set them. */
export function setForwardedHeaders(req: IncomingMessage): void {
  const headers = req.headers;
  const client = clientAddress(req);
  if (client !== undefined) {
    const prior = headers['x-forwarded-for'];
    headers['x-forwarded-for'] = prior ? `${prior}, ${client}` : client;
  }
  if (headers['x-forwarded-proto'] === undefined) {
    headers['x-forwarded-proto'] = 'encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http';
  }
  if (headers['x-forwarded-host'] === undefined && headers.host !== undefined) {
    headers['x-forwarded-host'] = headers.host;
  }
}

function clientAddress(req: IncomingMessage): string | undefined {
  const address = req.socket.remoteAddress;
  return address?.startsWith('::ffff:') ? address.slice(7) : address;
}

/** Errors that happen before a connection exists: nothing of the request reached the upstream. */
const CONNECT_PHASE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);

/** True when `err` on `proxyReq` proves the request never reached the upstream. */
export function failedBeforeSending(proxyReq: ClientRequest, err: Error): boolean {
  if (proxyReq.reusedSocket) return false;
  return CONNECT_PHASE_CODES.has((err as NodeJS.ErrnoException).code ?? '');
}

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT']);

export function isTimeoutError(err: Error): boolean {
  return TIMEOUT_CODES.has((err as NodeJS.ErrnoException).code ?? '');
}
