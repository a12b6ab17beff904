import type { ServerResponse } from 'node:http';
import { SwitchboardError, type ErrorCode } from '../../errors';
import type { Logger } from '../../log';
import { CLIENT_CLOSED, sendError, writeResponseHead, type ProxyRequest } from '../respond';
import type { Service } from '../service';
import { internalError, invalidResponse, type Attempt, type AttemptFailure } from './attempt';
import { BODY_BUFFERED, BODY_STREAMED, BodyBuffer, StreamedBody, bodyMode } from './body';
import type { RequestHead } from './request-head';
import { clientResponseHeaders } from './response-head';
import { RetryHandler, type ForwardHandler } from './retry';
import type { OutgoingRequest } from './transport';

/**
 * One client request on its way through the proxy, once routed and admitted: the outermost
 * wrapper of the forwarding chain (dispatch → retry → passive health → attempt → transport).
 * It owns the client's side: `100 Continue`, reading a body that must be replayable, writing
 * the chosen response (head checked again by node's `writeHead`, which may still refuse it:
 * then it is `upstream_invalid_response`), backpressure, JSON errors, and exactly one
 * `complete` when the client's response closes.
 *
 * Everything that calls into it from outside (node's events here, the transport's callbacks
 * in attempt.ts) is guarded: an exception fails this request with 500 `internal_error`, is
 * logged with the request id and counted, and never reaches the process.
 */

/** What every exchange of one proxy shares. */
export interface DispatchContext {
  /** Overall deadline for the upstream's response head, retries included. */
  readonly responseMs: number;
  /** The proxy is shutting down: responses ask clients to close. */
  readonly closing: boolean;
  readonly logger: Logger;
  /** Once per exchange, when the client side has ended. */
  complete(exchange: Exchange): void;
  /** An exception in one request's handling (logged and counted by the proxy). */
  internalError(err: unknown, requestId: string, service: string): void;
}

export class Exchange implements ForwardHandler {
  /** Status the client got; CLIENT_CLOSED if it left first. */
  status = 0;
  error: ErrorCode | undefined = undefined;
  /** Id of the instance whose answer the client got (or whose failure it got); '' before. */
  upstream = '';
  private retries: RetryHandler | undefined = undefined;
  /** The try whose response is being relayed. */
  private relaying: Attempt | undefined = undefined;
  private bodyBuffer: BodyBuffer | undefined = undefined;
  private watchingDrain = false;
  private done = false;

  constructor(
    private readonly context: DispatchContext,
    readonly req: ProxyRequest,
    readonly res: ServerResponse,
    readonly service: Service,
    private readonly head: RequestHead,
    /** The target to send upstream (after any prefix strip). */
    private readonly path: string,
    readonly startedAt: number,
  ) {}

  get tries(): number {
    return this.retries?.tries ?? 0;
  }

  start(): void {
    this.req.exchange = this;
    this.service.budget.requestStarted();
    // `on`, not `once`: once() would wrap the listener in a new function per request.
    this.res.on('close', onClientClose);
    // Only now, routed and admitted, is the body worth sending (node's checkContinue).
    if (this.head.expectContinue) this.res.writeContinue();
    const mode = bodyMode(this.head.bodyLength, this.service.retry.bufferBodyUpTo);
    if (mode === BODY_BUFFERED) {
      this.bodyBuffer = new BodyBuffer();
      this.req.on('data', onBodyData);
      this.req.on('end', onBodyEnd);
      return;
    }
    this.forward(mode === BODY_STREAMED ? new StreamedBody(this.req) : null);
  }

  private forward(body: OutgoingRequest['body']): void {
    const request: OutgoingRequest = { method: this.req.method ?? 'GET', path: this.path, headers: this.head.headers, body };
    this.retries = new RetryHandler(this.service, request, this.req, this, this.startedAt, this.context.responseMs);
    this.retries.start();
  }

  // ---- from the forwarding chain ---------------------------------------------------------

  onAttemptHeaders(attempt: Attempt, status: number, statusText: string, rawHeaders: Buffer[]): boolean {
    if (this.done) return false;
    const headers = clientResponseHeaders(rawHeaders, this.head.requestId);
    // Shutting down: node answers `Connection: close` and ends the connection after this response.
    if (this.context.closing) this.res.shouldKeepAlive = false;
    try {
      writeResponseHead(this.res, status, statusText, headers);
    } catch (err) {
      // node refused the head (what response-head.ts did not foresee): nothing was written.
      attempt.cancel();
      this.service.passive.failure(attempt.upstream.id);
      this.failed(invalidResponse(this.service.name, (err as Error).message, err), attempt);
      return true;
    }
    this.relaying = attempt;
    this.upstream = attempt.upstream.id;
    return true;
  }

  onAttemptData(attempt: Attempt, chunk: Buffer): boolean {
    if (this.done || this.res.write(chunk)) return true;
    // The client reads slower than the upstream sends: hold the upstream until it catches up.
    if (!this.watchingDrain) {
      this.watchingDrain = true;
      this.res.on('drain', onClientDrain);
    }
    return false;
  }

  onAttemptEnd(): void {
    this.relaying = undefined;
    if (!this.done) this.res.end();
  }

  onAttemptError(attempt: Attempt, failure: AttemptFailure): void {
    this.relaying = undefined;
    if (failure.kind === 'internal') this.crash(failure.error.cause);
    else this.failed(failure.error, attempt);
  }

  onNoUpstream(error: SwitchboardError): void {
    this.failed(error, undefined);
  }

  // ---- the client side --------------------------------------------------------------------

  private failed(error: SwitchboardError, attempt: Attempt | undefined): void {
    this.error = error.code;
    if (attempt !== undefined) this.upstream = attempt.upstream.id;
    const logger = this.context.logger;
    if (error.code === 'upstream_invalid_response') {
      logger.warn({ err: error, service: this.service.name, upstream: attempt?.upstream.id, requestId: this.head.requestId }, 'invalid upstream response');
    } else if (logger.isLevelEnabled('debug')) {
      logger.debug({ err: error, service: this.service.name, tries: this.tries, requestId: this.head.requestId }, 'request failed');
    }
    if (!this.done) sendError(this.res, error);
  }

  /** An exception of ours while handling this request: it fails, nothing else does. */
  crash(err: unknown): void {
    this.error = 'internal_error';
    this.context.internalError(err, this.head.requestId, this.service.name);
    this.retries?.close();
    try {
      if (!this.done) sendError(this.res, internalError(err));
    } catch {
      this.res.destroy();
    }
  }

  clientDrained(): void {
    if (!this.done) this.relaying?.resume();
  }

  bodyChunk(chunk: Buffer): void {
    this.bodyBuffer?.push(chunk);
  }

  bodyEnd(): void {
    if (this.done || this.bodyBuffer === undefined) return;
    const body = this.bodyBuffer.join();
    this.bodyBuffer = undefined;
    this.forward(body);
  }

  /** The client's response closed (sent in full, or the client left): account, once. */
  finish(): void {
    if (this.done) return;
    this.done = true;
    this.status = this.res.headersSent ? this.res.statusCode : CLIENT_CLOSED;
    // A client that left must not leave the upstream working for nobody.
    this.retries?.close();
    this.relaying = undefined;
    this.service.budget.requestFinished();
    this.service.limiter.release();
    this.req.exchange = undefined;
    this.context.complete(this);
  }
}

/** Node's events reach the exchange through these (no closures per request), guarded. */
function guarded(req: ProxyRequest, run: (exchange: Exchange, chunk?: Buffer) => void, chunk?: Buffer): void {
  const exchange = req.exchange;
  if (exchange === undefined) return;
  try {
    run(exchange, chunk);
  } catch (err) {
    exchange.crash(err);
  }
}

function onClientClose(this: ServerResponse): void {
  guarded(this.req as ProxyRequest, finish);
}

function onClientDrain(this: ServerResponse): void {
  guarded(this.req as ProxyRequest, drained);
}

function onBodyData(this: ProxyRequest, chunk: Buffer): void {
  guarded(this, bodyChunk, chunk);
}

function onBodyEnd(this: ProxyRequest): void {
  guarded(this, bodyEnded);
}

const finish = (exchange: Exchange): void => exchange.finish();
const drained = (exchange: Exchange): void => exchange.clientDrained();
const bodyChunk = (exchange: Exchange, chunk?: Buffer): void => exchange.bodyChunk(chunk as Buffer);
const bodyEnded = (exchange: Exchange): void => exchange.bodyEnd();
