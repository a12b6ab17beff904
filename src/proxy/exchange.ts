import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { SwitchboardError, type ErrorCode } from '../errors';
import type { Logger } from '../log';
import {
  failedBeforeSending,
  isTimeoutError,
  prepareRequestHeaders,
  relayBody,
  responseHeaders,
  sendError,
  setPath,
  type AttemptOwner,
  type Forwarder,
  type ProxyRequest,
  type ResponseSink,
  type UpstreamTarget,
} from './forward';
import { BODY_BUFFERED, BODY_NONE, BODY_STREAMED, BodyBuffer, bodyMode, type BodyMode } from './request-body';
import { statusFailureKind, type FailureKind } from './retry';
import type { Service } from './service';
import type { Upstream } from './upstream';

/** What every exchange of one proxy shares. */
export interface ExchangeContext {
  readonly connectMs: number;
  /** Overall deadline for the upstream's response headers, retries included. */
  readonly responseMs: number;
  /** The proxy is shutting down: responses ask clients to close. */
  readonly closing: boolean;
  readonly logger: Logger;
  readonly forwarder: Forwarder;
  /** Once per exchange, when the client side has ended. */
  complete(exchange: Exchange): void;
}

/** `status` of an exchange whose client left before a response started. */
export const CLIENT_CLOSED = 499;

/**
 * One client request on its way through the proxy, across however many attempts it takes:
 * pick → forward (forward.ts) → on failure, passive accounting (health/passive.ts) and the
 * retry decision (retry.ts) → deliver the response or a JSON error → account. Exactly one
 * `complete` per exchange, when the client's response closes.
 *
 * Per request this allocates the exchange itself and, per attempt, a target and what
 * http-proxy makes for one `web()` call; the timers take the exchange as their argument and
 * http-proxy's events find it through forward.ts, so we add no closures on the common path.
 */
export class Exchange implements AttemptOwner, ResponseSink {
  /** Status the client got; CLIENT_CLOSED if it left first. */
  status = 0;
  error: ErrorCode | undefined = undefined;
  tries = 0;
  private upstream: Upstream | undefined = undefined;
  /** The current attempt's target: events naming another one are late news of an abandoned attempt. */
  private target: UpstreamTarget | undefined = undefined;
  private proxyReq: ClientRequest | undefined = undefined;
  /** The response being relayed to the client, once one was chosen. */
  private proxyRes: IncomingMessage | undefined = undefined;
  private tried: Upstream[] | undefined = undefined;
  private holdsRetrySlot = false;
  private readonly bodyMode: BodyMode;
  private body: Buffer | undefined = undefined;
  private bodyBuffer: BodyBuffer | undefined = undefined;
  /** A streamed body has started flowing to some upstream: it cannot be sent again. */
  private bodyConsumed = false;
  /** The current attempt's socket is still connecting: nothing has reached the upstream. */
  private connecting = false;
  private tryTimer: NodeJS.Timeout | undefined = undefined;
  private tryTimerIsDeadline = false;
  private connectTimer: NodeJS.Timeout | undefined = undefined;
  private watchingDrain = false;
  private done = false;

  constructor(
    private readonly context: ExchangeContext,
    readonly req: ProxyRequest,
    readonly res: ServerResponse,
    readonly service: Service,
    readonly startedAt: number,
  ) {
    this.bodyMode = bodyMode(req.headers, service.retry.bufferBodyUpTo);
  }

  start(): void {
    this.req.exchange = this;
    this.service.budget.requestStarted();
    // `on`, not `once`: once() would wrap the listener in a new function per request.
    this.res.on('close', onClientClose);
    prepareRequestHeaders(this.req);
    if (this.bodyMode !== BODY_BUFFERED) {
      this.attempt(undefined);
      return;
    }
    this.bodyBuffer = new BodyBuffer();
    this.req.on('data', onBodyData);
    this.req.on('end', onBodyEnd);
  }

  // ---- attempts -------------------------------------------------------------------------

  /** Picks an upstream (another one on a retry) and sends the request to it. */
  private attempt(previousFailure: SwitchboardError | undefined): void {
    const upstream = this.service.pick(this.req, this.tried);
    if (upstream === undefined) {
      this.endRetry();
      this.fail(previousFailure ?? new SwitchboardError('no_healthy_upstream', `service "${this.service.name}" has no healthy instance`));
      return;
    }
    this.tries++;
    this.upstream = upstream;
    upstream.acquire();
    this.connecting = false;
    const target: UpstreamTarget = { host: upstream.address, port: upstream.port };
    this.target = target;
    try {
      this.context.forwarder.web(this.req, this.res, target, upstream.agent, this);
    } catch (err) {
      // node refused to build the upstream request (a header it will not send): no upstream is to blame.
      this.detach(true);
      this.fail(new SwitchboardError('bad_request', `the request cannot be forwarded: ${(err as Error).message}`, { cause: err }));
      return;
    }
    this.armTryTimer();
  }

  /** http-proxy's `buffer` hook, called inside `web()` with this attempt's upstream request. */
  pipe(proxyReq: ClientRequest): ClientRequest {
    this.proxyReq = proxyReq;
    setPath(proxyReq, this.req.url as string);
    if (this.bodyMode === BODY_NONE) proxyReq.end();
    else if (this.bodyMode === BODY_BUFFERED) proxyReq.end(this.body);
    // BODY_STREAMED: piped once the socket is connected (connected()).
    return proxyReq;
  }

  attemptSocket(proxyReq: ClientRequest): void {
    if (proxyReq !== this.proxyReq) return;
    const socket = proxyReq.socket as Socket;
    if (!socket.connecting) {
      this.connected(proxyReq);
      return;
    }
    // A fresh connection (rare with keep-alive): the only closure, made here.
    this.connecting = true;
    this.connectTimer = setTimeout(onConnectTimeout, this.context.connectMs, this);
    socket.once('connect', () => this.connected(proxyReq));
  }

  private connected(proxyReq: ClientRequest): void {
    if (proxyReq !== this.proxyReq) return;
    this.connecting = false;
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    if (this.bodyMode === BODY_STREAMED && !this.bodyConsumed) {
      this.bodyConsumed = true;
      this.req.pipe(proxyReq);
    }
  }

  attemptResponse(proxyRes: IncomingMessage): void {
    const proxyReq = this.proxyReq;
    // A response always arrives on its own request's socket.
    if (proxyReq === undefined || proxyRes.socket !== proxyReq.socket || this.done) {
      proxyRes.resume();
      return;
    }
    this.clearTimers();
    const upstream = this.upstream as Upstream;
    const status = proxyRes.statusCode ?? 502;
    this.service.passive.response(upstream.id, status);
    this.endRetry();
    if (status >= 500 && this.service.retry.retriesStatus(status) && this.mayRetry(statusFailureKind(status), status)) {
      // Read and drop the failed response so its connection goes back to the pool.
      proxyRes.resume();
      this.retry(false, new SwitchboardError('upstream_unreachable', `service "${this.service.name}": upstream answered ${status}`));
      return;
    }
    this.deliver(proxyRes, status);
  }

  /** http-proxy reports errors of the upstream request and of the client's request alike. */
  attemptError(target: UpstreamTarget, err: Error): void {
    const proxyReq = this.proxyReq;
    if (target !== this.target || proxyReq === undefined || this.done) return;
    if (this.proxyRes !== undefined) {
      // The response was already being relayed: all we can do is cut the client's.
      this.res.destroy();
      return;
    }
    this.clearTimers();
    const timeout = isTimeoutError(err);
    const kind: FailureKind = failedBeforeSending(proxyReq, err) ? 'connect-failure' : timeout ? 'timeout' : 'reset';
    const code = (err as NodeJS.ErrnoException).code ?? 'ERROR';
    const failure = new SwitchboardError(
      timeout ? 'upstream_timeout' : 'upstream_unreachable',
      `service "${this.service.name}": upstream failed (${code})`,
      { cause: err },
    );
    if (kind === 'reset' && proxyReq.reusedSocket) (this.upstream as Upstream).dropIdleConnections();
    this.attemptFailed(kind, failure, false);
  }

  /** The per-try timeout, the overall response deadline, or the connect timeout fired. */
  timedOut(phase: 'try' | 'connect'): void {
    if (phase === 'try') this.tryTimer = undefined;
    else this.connectTimer = undefined;
    if (this.done || this.proxyReq === undefined || this.proxyRes !== undefined) return;
    this.clearTimers();
    const deadline = phase === 'try' && this.tryTimerIsDeadline;
    const kind: FailureKind = this.connecting ? 'connect-failure' : 'timeout';
    const what = this.connecting ? 'accept a connection' : 'respond';
    const ms = phase === 'connect' ? this.context.connectMs : deadline ? this.context.responseMs : this.service.retry.perTryTimeoutMs;
    const failure = new SwitchboardError('upstream_timeout', `service "${this.service.name}": upstream did not ${what} within ${ms} ms`);
    if (deadline) {
      // The client's time is up: no retry, whatever the policy says.
      this.service.passive.failure((this.upstream as Upstream).id);
      this.endRetry();
      this.detach(true);
      this.fail(failure);
      return;
    }
    this.attemptFailed(kind, failure, true);
  }

  private attemptFailed(kind: FailureKind, failure: SwitchboardError, destroy: boolean): void {
    this.service.passive.failure((this.upstream as Upstream).id);
    this.endRetry();
    if (this.mayRetry(kind, undefined)) this.retry(destroy, failure);
    else {
      this.detach(destroy);
      this.fail(failure);
    }
  }

  private mayRetry(kind: FailureKind, status: number | undefined): boolean {
    const retry = this.service.retry;
    if (retry.attempts === 0) return false;
    const allowed = retry.mayRetry({
      kind,
      status,
      method: this.req.method ?? 'GET',
      tries: this.tries,
      bodyReplayable: this.bodyMode !== BODY_STREAMED || !this.bodyConsumed,
      clientResponseStarted: this.res.headersSent,
    });
    this.holdsRetrySlot = allowed;
    return allowed;
  }

  private retry(destroy: boolean, failure: SwitchboardError): void {
    const previous = this.upstream as Upstream;
    this.detach(destroy);
    (this.tried ??= []).push(previous);
    if (this.context.logger.isLevelEnabled('debug')) {
      this.context.logger.debug({ err: failure, service: this.service.name, upstream: previous.id, tries: this.tries }, 'retrying on another instance');
    }
    this.attempt(failure);
  }

  /** Gives up the current attempt: its later events are ignored, its upstream released. */
  private detach(destroy: boolean): void {
    const proxyReq = this.proxyReq;
    this.proxyReq = undefined;
    this.target = undefined;
    if (destroy && proxyReq && !proxyReq.destroyed) proxyReq.destroy();
    this.upstream?.release();
    this.upstream = undefined;
  }

  // ---- the client side ------------------------------------------------------------------

  private deliver(proxyRes: IncomingMessage, status: number): void {
    this.proxyRes = proxyRes;
    const headers = responseHeaders(this.req, proxyRes, this.context.closing || !this.res.shouldKeepAlive);
    if (proxyRes.statusMessage) this.res.writeHead(status, proxyRes.statusMessage, headers);
    else this.res.writeHead(status, headers);
    relayBody(proxyRes, this);
  }

  responseData(chunk: Buffer): void {
    if (this.done || this.res.write(chunk)) return;
    // The client reads slower than the upstream sends: hold the upstream until it catches up.
    this.proxyRes?.pause();
    if (this.watchingDrain) return;
    this.watchingDrain = true;
    this.res.on('drain', onClientDrain);
  }

  clientDrained(): void {
    if (!this.done) this.proxyRes?.resume();
  }

  responseEnd(): void {
    if (!this.done) this.res.end();
  }

  responseClosed(proxyRes: IncomingMessage): void {
    // An upstream that closes mid-body must not leave the client waiting forever.
    if (proxyRes === this.proxyRes && !proxyRes.complete && !this.done) this.res.destroy();
  }

  private fail(error: SwitchboardError): void {
    this.error = error.code;
    if (this.context.logger.isLevelEnabled('debug')) {
      this.context.logger.debug({ err: error, service: this.service.name, tries: this.tries }, 'request failed');
    }
    sendError(this.res, error);
  }

  bodyChunk(chunk: Buffer): void {
    this.bodyBuffer?.push(chunk);
  }

  bodyEnd(): void {
    if (this.done || this.bodyBuffer === undefined) return;
    this.body = this.bodyBuffer.join();
    this.bodyBuffer = undefined;
    this.attempt(undefined);
  }

  /** The client's response closed (sent in full, or the client left): account, once. */
  finish(): void {
    if (this.done) return;
    this.done = true;
    this.status = this.res.headersSent ? this.res.statusCode : CLIENT_CLOSED;
    this.clearTimers();
    // A client that left must not leave the upstream working for nobody. After a normal
    // completion the upstream request is already marked destroyed (its socket is back in
    // the pool), so this never cuts a reusable connection.
    const proxyReq = this.proxyReq;
    if (proxyReq && !proxyReq.destroyed) proxyReq.destroy();
    this.proxyReq = undefined;
    this.target = undefined;
    this.upstream?.release();
    this.upstream = undefined;
    this.endRetry();
    this.service.budget.requestFinished();
    this.service.limiter.release();
    this.req.exchange = undefined;
    this.context.complete(this);
  }

  private armTryTimer(): void {
    const perTry = this.service.retry.perTryTimeoutMs;
    const left = this.tries === 1 ? this.context.responseMs : this.context.responseMs - (performance.now() - this.startedAt);
    this.tryTimerIsDeadline = !(perTry > 0 && perTry < left);
    this.tryTimer = setTimeout(onTryTimeout, this.tryTimerIsDeadline ? Math.max(1, left) : perTry, this);
  }

  private clearTimers(): void {
    if (this.tryTimer !== undefined) clearTimeout(this.tryTimer);
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.tryTimer = undefined;
    this.connectTimer = undefined;
  }

  /** A retry's attempt has ended (or the exchange has): give its budget slot back. */
  private endRetry(): void {
    if (!this.holdsRetrySlot) return;
    this.holdsRetrySlot = false;
    this.service.budget.retryFinished();
  }
}

function onClientClose(this: ServerResponse): void {
  (this.req as ProxyRequest).exchange?.finish();
}

function onClientDrain(this: ServerResponse): void {
  (this.req as ProxyRequest).exchange?.clientDrained();
}

function onBodyData(this: ProxyRequest, chunk: Buffer): void {
  this.exchange?.bodyChunk(chunk);
}

function onBodyEnd(this: ProxyRequest): void {
  this.exchange?.bodyEnd();
}

function onTryTimeout(exchange: Exchange): void {
  exchange.timedOut('try');
}

function onConnectTimeout(exchange: Exchange): void {
  exchange.timedOut('connect');
}
