import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import type { ProxyConfig } from '../config/types';
import type { ProxyRequest } from './respond';

/**
 * The proxy's access log: one line per HTTP request it answered, written when the response is
 * done (or the client left), in JSON or Apache's combined format. Cheap by construction: no
 * per-request allocation beyond the line itself, bytes counted from the socket's own counters
 * (the difference since the previous request on that connection), writes buffered by
 * sonic-boom. Every byte of it that came from a client is escaped: a header cannot forge a
 * second line or a field.
 */
export type AccessLogConfig = ProxyConfig['accessLog'];

/** Where this connection's byte counters stood when its previous request was logged. */
const READ_MARK = Symbol('access-log-read');
const WRITTEN_MARK = Symbol('access-log-written');
type MarkedSocket = Socket & { [READ_MARK]?: number; [WRITTEN_MARK]?: number };

/** What a tracked request carries to the one shared `close` listener (no closure per request). */
const TRACKED = Symbol('access-log-tracked');
interface Tracked {
  log: AccessLog;
  startedAt: number;
  socket: MarkedSocket;
}
type TrackedResponse = ServerResponse & { [TRACKED]?: Tracked };

/**
 * Lines are gathered here and handed to the destination in batches: one write per ~32 KiB
 * or per 200 ms, whichever comes first. Handing sonic-boom every line made it re-measure
 * its growing buffer per line and issue a write syscall per 4 KiB — together a quarter of
 * the proxy's throughput in the benchmark; batched, the log costs a few percent.
 */
const BATCH_BYTES = 32 * 1024;
const BATCH_MS = 200;

export class AccessLog {
  private readonly destination: ReturnType<typeof pino.destination>;
  /** Lines not handed on yet, joined once at flush (a string grown line by line is a deep rope that every consumer must flatten first). */
  private pending: string[] = [];
  private pendingLength = 0;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly config: Readonly<AccessLogConfig>) {
    // Whole batches of whole lines: stdout is shared with the pino logs.
    this.destination = pino.destination(config.path === '' ? { dest: 1, sync: false } : { dest: config.path, sync: false, mkdir: true });
  }

  /** Logs the request once its response is over. */
  track(req: ProxyRequest, res: ServerResponse, startedAt: number): void {
    // The socket is taken now: an HTTP/2 stream forgets its connection once it closes.
    (res as TrackedResponse)[TRACKED] = { log: this, startedAt, socket: connectionOf(req) };
    res.on('close', onResponseClose);
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

  /** @internal the response closed (onResponseClose). */
  write(req: ProxyRequest, res: ServerResponse, startedAt: number, socket: MarkedSocket): void {
    const status = res.headersSent ? res.statusCode : 499;
    if (this.config.sample < 1 && status < 500 && Math.random() >= this.config.sample) return this.mark(socket);
    const bytesIn = socket.bytesRead - (socket[READ_MARK] ?? 0);
    const bytesOut = socket.bytesWritten - (socket[WRITTEN_MARK] ?? 0);
    this.mark(socket);
    const exchange = req.exchange;
    const entry: AccessEntry = {
      time: isoNow(),
      id: req.requestId,
      client: socket.remoteAddress ?? '',
      method: req.method ?? '',
      host: hostOf(req.rawHeaders),
      path: req.url ?? '',
      status,
      bytesIn,
      bytesOut,
      durationMs: Math.round((performance.now() - startedAt) * 1000) / 1000,
      service: exchange?.service.name ?? '',
      upstream: exchange?.upstream ?? '',
      attempts: exchange?.tries ?? 0,
      error: req.errorCode ?? '',
    };
    const line = this.config.format === 'json' ? jsonLine(entry) : combinedLine(entry, req);
    this.pending.push(line);
    this.pendingLength += line.length;
    if (this.pendingLength >= BATCH_BYTES) this.flush();
    else this.flushTimer ??= setTimeout(this.flushLater, BATCH_MS).unref();
  }

  private readonly flushLater = (): void => {
    this.flushTimer = undefined;
    this.flush();
  };

  private flush(): void {
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (this.pending.length === 0) return;
    const batch = this.pending.join('');
    this.pending = [];
    this.pendingLength = 0;
    this.destination.write(batch);
  }

  private mark(socket: MarkedSocket): void {
    socket[READ_MARK] = socket.bytesRead;
    socket[WRITTEN_MARK] = socket.bytesWritten;
  }
}

/** One line of the JSON format: the fields, in this order. */
export interface AccessEntry {
  time: string;
  id: string;
  client: string;
  method: string;
  host: string;
  path: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  service: string;
  upstream: string;
  attempts: number;
  error: string;
}

/**
 * The JSON line, field by field: the same text JSON.stringify(entry) makes (a test checks),
 * at a third of its cost — only the strings need escaping.
 */
export function jsonLine(e: AccessEntry): string {
  return `{"time":"${e.time}","id":${quote(e.id)},"client":${quote(e.client)},"method":${quote(e.method)},"host":${quote(e.host)},"path":${quote(e.path)},"status":${e.status},"bytesIn":${e.bytesIn},"bytesOut":${e.bytesOut},"durationMs":${e.durationMs},"service":${quote(e.service)},"upstream":${quote(e.upstream)},"attempts":${e.attempts},"error":${quote(e.error)}}\n`;
}

/** Printable ASCII without `"` and `\`: what JSON.stringify would only wrap in quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** A JSON string: most values need no escaping, and skip JSON.stringify's allocations. */
function quote(text: string): string {
  return PLAIN.test(text) ? `"${text}"` : JSON.stringify(text);
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
 * Host, or HTTP/2's :authority, read off the raw lines: `req.headers` would make node build
 * its header object for every request just for the log.
 */
function hostOf(raw: readonly string[]): string {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 4 ? name.toLowerCase() === 'host' : name === ':authority') return raw[i + 1];
  }
  return '';
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `client - - [27/Nov/2026:15:04:00 +0000] "GET /x HTTP/1.1" 200 123 "referer" "agent"` + our fields. */
function combinedLine(e: AccessEntry, req: ProxyRequest): string {
  const d = new Date(e.time);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const clf = `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
  const request = `${e.method} ${e.path} HTTP/${req.httpVersion}`;
  const extra = `id=${quoted(e.id)} host=${quoted(e.host)} service=${quoted(e.service)} upstream=${quoted(e.upstream)} attempts=${e.attempts} duration_ms=${e.durationMs} bytes_in=${e.bytesIn} error=${quoted(e.error)}`;
  return `${e.client} - - [${clf}] ${quoted(request)} ${e.status} ${e.bytesOut} ${quoted(headerText(req.headers.referer))} ${quoted(headerText(req.headers['user-agent']))} ${extra}\n`;
}

function headerText(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(', ') : (value ?? '');
}

/** A double-quoted field; quotes, backslashes and anything not printable ASCII escaped as \xHH. */
function quoted(text: string): string {
  if (text === '') return '"-"';
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out += c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c ? `\\x${c.toString(16).padStart(2, '0')}` : text[i];
  }
  return `${out}"`;
}

/**
 * The connection's socket (for HTTP/2, its session's: streams share the connection, so an
 * HTTP/2 line's bytes are the connection's since its previous logged request).
 */
function connectionOf(req: ProxyRequest): MarkedSocket {
  const session = (req as unknown as { stream?: { session?: { socket?: MarkedSocket } } }).stream?.session;
  return session?.socket ?? (req.socket as MarkedSocket);
}

function onResponseClose(this: TrackedResponse): void {
  const tracked = this[TRACKED];
  if (tracked === undefined) return;
  this[TRACKED] = undefined;
  tracked.log.write(this.req as ProxyRequest, this, tracked.startedAt, tracked.socket);
}
