import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import type { ProxyConfig } from '../../config/types';
import { CLIENT_CLOSED, type ProxyRequest } from '../respond';
import { type AccessEntry, type CombinedFields, maxLineBytes, writeCombined, writeJson } from './formats';
import { LineBuffer } from './line-buffer';

/**
 * The proxy's access log: one line per HTTP request it answered, written when the response is
 * done (or the client left), in JSON or Apache's combined format (formats.ts). Cheap by
 * construction: a forwarded request is logged from the exchange's own completion (no listener
 * of its own), bytes are counted from the socket's counters (the difference since the previous
 * request on that connection), and lines are written as bytes into a batch buffer.
 */
export type AccessLogConfig = ProxyConfig['accessLog'];

/** A request the proxy is done with: what its line says. The forwarding exchange is one. */
export interface AnsweredRequest {
  readonly req: ProxyRequest;
  readonly res: ServerResponse;
  readonly startedAt: number;
  /** Status the client got; CLIENT_CLOSED if it left first. */
  readonly status: number;
  readonly service: { readonly name: string };
  /** Id of the instance that answered, '' if none did. */
  readonly upstream: string;
  readonly tries: number;
  /** The proxy's own error code, if it answered with one. */
  readonly error: string | undefined;
}

/** Where this connection's byte counters stood when its previous request was logged. */
const READ_MARK = Symbol('access-log-read');
const WRITTEN_MARK = Symbol('access-log-written');
type MarkedSocket = Socket & { [READ_MARK]?: number; [WRITTEN_MARK]?: number };

/** What a request the proxy refused itself carries to the shared `close` listener. */
const TRACKED = Symbol('access-log-tracked');
interface Tracked {
  log: AccessLog;
  startedAt: number;
  service: string;
}
type TrackedResponse = ServerResponse & { [TRACKED]?: Tracked };

/**
 * Lines are gathered into one buffer and handed to the destination in batches: one write per
 * ~32 KiB or per 200 ms, whichever comes first (a write per line costs a syscall each).
 */
const BATCH_BYTES = 32 * 1024;
const BUFFER_BYTES = 64 * 1024;
const BATCH_MS = 200;

export class AccessLog {
  private readonly destination: ReturnType<typeof pino.destination>;
  private readonly lines = new LineBuffer(BUFFER_BYTES);
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly config: Readonly<AccessLogConfig>) {
    // Whole batches of whole lines: stdout is shared with the pino logs.
    const options = { sync: false, contentMode: 'buffer' as const };
    this.destination = pino.destination(config.path === '' ? { ...options, dest: 1 } : { ...options, dest: config.path, mkdir: true });
  }

  /** A forwarded request is over: its line, now. */
  answered(request: AnsweredRequest): void {
    const { req, res, status } = request;
    // HTTP/2: the stream has forgotten its connection by now; its session's socket was kept.
    const socket = connectionOf(req, res);
    // Each read once: node's bytesWritten copies the socket's write queue to count it.
    const read = socket.bytesRead;
    const written = socket.bytesWritten;
    const bytesIn = read - (socket[READ_MARK] ?? 0);
    const bytesOut = written - (socket[WRITTEN_MARK] ?? 0);
    socket[READ_MARK] = read;
    socket[WRITTEN_MARK] = written;
    if (this.config.sample < 1 && status < 500 && Math.random() >= this.config.sample) return;
    const entry: AccessEntry = {
      time: isoNow(),
      id: req.requestId,
      client: socket.remoteAddress ?? '',
      method: req.method ?? '',
      host: headerOf(req.rawHeaders, 'host'),
      path: req.url ?? '',
      status,
      bytesIn,
      bytesOut,
      durationMs: Math.round((performance.now() - request.startedAt) * 1000),
      service: request.service.name,
      upstream: request.upstream,
      attempts: request.tries,
      error: request.error ?? '',
    };
    const combined = this.config.format === 'combined' ? combinedFields(req) : undefined;
    const size = maxLineBytes(entry, combined);
    if (!this.lines.fits(size)) this.flush(size);
    if (combined === undefined) writeJson(this.lines, entry);
    else writeCombined(this.lines, entry, combined);
    if (this.lines.length >= BATCH_BYTES) this.flush();
    else this.flushTimer ??= setTimeout(this.flushLater, BATCH_MS).unref();
  }

  /** A request arrived: an HTTP/2 one's connection is noted now (its stream forgets it once closed). */
  begin(req: ProxyRequest, res: ServerResponse): void {
    if ((req as { stream?: unknown }).stream !== undefined) connectionOf(req, res);
  }

  /**
   * A request the proxy answers itself (refused, unknown service, overloaded): logged once its
   * response closes, with the status and error code it was sent.
   */
  track(res: ServerResponse, startedAt: number, service = ''): void {
    (res as TrackedResponse)[TRACKED] = { log: this, startedAt, service };
    res.on('close', onTrackedClose);
  }

  /**
   * Writes out what is buffered and closes the file (stdout stays open). Resolves once done —
   * also when the file was still being opened (a short-lived proxy) — or after 5 s at most.
   */
  close(): Promise<void> {
    this.flush();
    const destination = this.destination;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5_000);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      destination.once('close', done);
      destination.once('error', done);
      try {
        destination.end();
      } catch {
        done();
      }
    });
  }

  private readonly flushLater = (): void => {
    this.flushTimer = undefined;
    this.flush();
  };

  /** Hands the batch on; the next line may need `room` bytes (one larger than a batch gets a buffer of its own size). */
  private flush(room = 0): void {
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.lines.length === 0 && this.lines.fits(room)) return;
    const batch = this.lines.take(room);
    if (batch.length > 0) this.destination.write(batch as unknown as string);
  }
}

/** Date#toISOString, made once per millisecond: at 10,000 requests/s most lines share one. */
let isoMs = 0;
let isoText = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    isoText = new Date(now).toISOString();
  }
  return isoText;
}

/**
 * A header's first value (Host also from HTTP/2's :authority), read off the raw lines:
 * `req.headers` would make node build its header object for every request just for the log.
 */
function headerOf(raw: readonly string[], lowerName: string): string {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === lowerName.length ? name.toLowerCase() === lowerName : lowerName === 'host' && name === ':authority') return raw[i + 1];
  }
  return '';
}

function combinedFields(req: ProxyRequest): CombinedFields {
  return { httpVersion: req.httpVersion, referer: headerOf(req.rawHeaders, 'referer'), userAgent: headerOf(req.rawHeaders, 'user-agent') };
}

/** The HTTP/2 session's socket, remembered on the response the first time it is asked for. */
const CONNECTION = Symbol('access-log-connection');
type ConnectedResponse = ServerResponse & { [CONNECTION]?: MarkedSocket };

/**
 * The connection's socket (for HTTP/2, its session's: streams share the connection, so an
 * HTTP/2 line's bytes are the connection's since its previous logged request).
 */
function connectionOf(req: ProxyRequest, res: ServerResponse): MarkedSocket {
  const stream = (req as unknown as { stream?: { session?: { socket?: MarkedSocket } } }).stream;
  if (stream === undefined) return req.socket as MarkedSocket;
  const remembered = (res as ConnectedResponse)[CONNECTION];
  if (remembered !== undefined) return remembered;
  const socket = stream.session?.socket ?? (req.socket as MarkedSocket);
  (res as ConnectedResponse)[CONNECTION] = socket;
  return socket;
}

function onTrackedClose(this: TrackedResponse): void {
  const tracked = this[TRACKED];
  if (tracked === undefined) return;
  this[TRACKED] = undefined;
  const req = this.req as ProxyRequest;
  tracked.log.answered({
    req,
    res: this,
    startedAt: tracked.startedAt,
    status: this.headersSent ? this.statusCode : CLIENT_CLOSED,
    service: { name: tracked.service },
    upstream: '',
    tries: 0,
    error: req.errorCode,
  });
}
