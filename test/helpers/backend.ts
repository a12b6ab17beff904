/**
 * Real upstream HTTP servers for end-to-end tests: each answers with its own id, the path and
 * the Host it saw, so a test can tell which instance the proxy picked and what it forwarded.
 * `/slow…` requests are held until the test releases them (for drain tests).
 */
import http from 'node:http';
import { closeNow, listenOnLoopback, portOf } from './http-server';

export interface BackendReply {
  backend: string;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

export class Backend {
  /** Requests currently held by `/slow…`. */
  readonly held: http.ServerResponse[] = [];
  received = 0;
  private readonly server = http.createServer((req, res) => this.handle(req, res));

  private constructor(readonly id: string) {}

  static async start(id: string): Promise<Backend> {
    const backend = new Backend(id);
    await listenOnLoopback(backend.server);
    return backend;
  }

  get port(): number {
    return portOf(this.server);
  }

  /** Answer every held `/slow` request. */
  release(): void {
    for (const res of this.held.splice(0)) this.reply(res, { backend: this.id, method: 'GET', path: '/slow', headers: {} });
  }

  async close(): Promise<void> {
    this.release();
    await closeNow(this.server);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.received++;
    req.resume();
    req.on('end', () => {
      if (req.url?.includes('/slow')) {
        this.held.push(res);
        return;
      }
      this.reply(res, { backend: this.id, method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    });
  }

  private reply(res: http.ServerResponse, body: BackendReply): void {
    const text = JSON.stringify(body);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }
}
