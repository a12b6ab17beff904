/**
 * The in-process upstream of the tests (one fixture for all of them): it answers JSON with its
 * id, the method, path and headers it saw (`BackendReply`; the id also in `x-backend`), so a
 * test can tell which instance the proxy picked and what it forwarded. A test switches its
 * behaviour at will: answer a status, hang, reset, or hold `/slow…` requests until released.
 * Health probes (`/health`) have their own status. Counts what it received. (An upstream that
 * must die by SIGKILL runs as its own process: backend-process.ts; raw bytes: raw-http.ts.)
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { closeNow, listenOnLoopback, portOf } from './http-server';

/** `reset`: read the request, then destroy the connection without answering. */
export type Behaviour = 'ok' | 'hang' | 'reset' | number;

export interface BackendReply {
  backend: string;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

export class Backend {
  behaviour: Behaviour = 'ok';
  healthStatus = 200;
  /** Requests other than health probes. */
  requests = 0;
  probes = 0;
  /** Client connections (from the proxy) open right now. */
  openConnections = 0;
  /** Connections the proxy closed its end of (a hung request's stays half-open here). */
  closedByProxy = 0;
  readonly bodies: string[] = [];
  readonly held: Array<{ req: http.IncomingMessage; res: http.ServerResponse }> = [];
  private readonly server: http.Server;

  /** `tls`: serve HTTPS with these options (a certificate; `requestCert` for mTLS). */
  private constructor(
    readonly id: string,
    tls?: https.ServerOptions,
  ) {
    const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => this.handle(req, res);
    // https.Server has every http.Server member the fixture uses.
    this.server = tls !== undefined ? (https.createServer(tls, handle) as unknown as http.Server) : http.createServer(handle);
    this.server.on('connection', (socket: Socket) => {
      this.openConnections++;
      socket.once('close', () => this.openConnections--);
      socket.once('end', () => this.closedByProxy++);
    });
    this.server.on('upgrade', (_req, socket: Socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nx-backend: ${this.id}\r\n\r\n`);
      socket.pipe(socket);
      socket.on('error', () => undefined);
    });
  }

  /** `keepAliveTimeoutMs`: how long it keeps an idle connection open (node's default: 5 s). */
  static async start(id: string, options: { keepAliveTimeoutMs?: number; tls?: https.ServerOptions } = {}): Promise<Backend> {
    const backend = new Backend(id, options.tls);
    if (options.keepAliveTimeoutMs !== undefined) backend.server.keepAliveTimeout = options.keepAliveTimeoutMs;
    await listenOnLoopback(backend.server);
    return backend;
  }

  /** `count` backends with ids `<prefix>-0`, `<prefix>-1`, … */
  static startMany(prefix: string, count: number): Promise<Backend[]> {
    return Promise.all(Array.from({ length: count }, (_, i) => Backend.start(`${prefix}-${i}`)));
  }

  get port(): number {
    return portOf(this.server);
  }

  /** Answers every held `/slow` request with 200. */
  release(): void {
    for (const { req, res } of this.held.splice(0)) this.reply(req, res, 200);
  }

  async close(): Promise<void> {
    this.release();
    await closeNow(this.server);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.url === '/health') {
      this.probes++;
      req.resume();
      this.reply(req, res, this.healthStatus);
      return;
    }
    this.requests++;
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      this.bodies.push(body);
      if (this.behaviour === 'hang') return;
      if (this.behaviour === 'reset') {
        req.socket.destroy();
        return;
      }
      if (req.url?.includes('/slow')) {
        this.held.push({ req, res });
        return;
      }
      this.reply(req, res, this.behaviour === 'ok' ? 200 : this.behaviour);
    });
  }

  private reply(req: http.IncomingMessage, res: http.ServerResponse, status: number): void {
    const body: BackendReply = { backend: this.id, method: req.method ?? '', path: req.url ?? '', headers: req.headers };
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-backend': this.id });
    res.end(text);
  }
}
