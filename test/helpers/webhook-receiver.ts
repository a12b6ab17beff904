/**
 * A webhook receiver on a loopback port: records every POST (headers, raw body, parsed JSON)
 * and answers what the test scripts — a status per delivery, or nothing at all (held).
 */
import http from 'node:http';
import { closeNow, listenOnLoopback, portOf } from './http-server';

export interface Received {
  headers: http.IncomingHttpHeaders;
  raw: string;
  body: { event: string; service?: string; instance?: { id: string }; [key: string]: unknown };
}

export class WebhookReceiver {
  readonly received: Received[] = [];
  /** Statuses for the next deliveries, in order; 200 once empty. 0 = hold the request open. */
  readonly script: number[] = [];
  private readonly held: http.ServerResponse[] = [];
  private readonly server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      const status = this.script.shift() ?? 200;
      if (status === 0 || (status >= 200 && status < 300)) this.received.push({ headers: req.headers, raw, body: JSON.parse(raw) as Received['body'] });
      if (status === 0) {
        this.held.push(res);
        return;
      }
      res.writeHead(status).end();
    });
  });

  static async start(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    await listenOnLoopback(receiver.server);
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${portOf(this.server)}/hook`;
  }

  events(): string[] {
    return this.received.map((r) => `${r.body.event} ${r.body.instance?.id ?? r.body.service ?? ''}`.trim());
  }

  /** Requests held open right now. */
  get holding(): number {
    return this.held.length;
  }

  release(): void {
    for (const res of this.held.splice(0)) res.writeHead(200).end();
  }

  async close(): Promise<void> {
    this.release();
    await closeNow(this.server);
  }
}
