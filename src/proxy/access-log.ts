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
const MARK = Symbol('access-log-mark');
type MarkedSocket = Socket & { [MARK]?: { read: number; written: number } };

export class AccessLog {
  private readonly destination: ReturnType<typeof pino.destination>;

  constructor(private readonly config: Readonly<AccessLogConfig>) {
    // A file takes batched writes; stdout is shared with the pino logs, so whole lines only.
    this.destination = pino.destination(config.path === '' ? { dest: 1, sync: false } : { dest: config.path, sync: false, minLength: 4096, mkdir: true });
  }

  /** Logs the request once its response is over. */
  track(req: ProxyRequest, res: ServerResponse, startedAt: number): void {
    // Taken now: an HTTP/2 stream forgets its connection once it closes.
    const socket = connectionOf(req);
    res.once('close', () => this.write(req, res, startedAt, socket));
  }

  /**
   * Writes out what is buffered and closes the file (stdout stays open). Resolves once done —
   * also when the file was still being opened (a short-lived proxy) — or after 5 s at most.
   */
  close(): Promise<void> {
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

  private write(req: ProxyRequest, res: ServerResponse, startedAt: number, socket: MarkedSocket): void {
    const status = res.headersSent ? res.statusCode : 499;
    if (this.config.sample < 1 && status < 500 && Math.random() >= this.config.sample) return this.mark(socket);
    const before = socket[MARK] ?? { read: 0, written: 0 };
    const bytesIn = socket.bytesRead - before.read;
    const bytesOut = socket.bytesWritten - before.written;
    this.mark(socket);
    const exchange = req.exchange;
    const entry: AccessEntry = {
      time: new Date().toISOString(),
      id: req.requestId,
      client: socket.remoteAddress ?? '',
      method: req.method ?? '',
      host: headerText(req.headers.host ?? req.headers[':authority']),
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
    this.destination.write(this.config.format === 'json' ? `${JSON.stringify(entry)}\n` : combinedLine(entry, req));
  }

  private mark(socket: MarkedSocket): void {
    socket[MARK] = { read: socket.bytesRead, written: socket.bytesWritten };
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
