/**
 * HTTP byte for byte, for hostile-input tests: an upstream that answers whatever bytes a
 * test gives it, and a client that writes raw bytes on one connection and reads responses
 * with a deliberately small parser (Content-Length, chunked, or until close).
 */
import net, { type AddressInfo } from 'node:net';

/** Answers each request head it reads with `respond(head)`; closes after it when `close` is set. */
export class RawUpstream {
  /** Request heads received, in order (request line and header lines). */
  readonly requests: string[] = [];
  respond: (head: string) => { bytes: string | Buffer; close?: boolean } = () => ({ bytes: 'HTTP/1.1 204 No Content\r\n\r\n' });
  private readonly server = net.createServer((socket) => this.serve(socket));
  private readonly sockets = new Set<net.Socket>();

  static async start(): Promise<RawUpstream> {
    const upstream = new RawUpstream();
    await new Promise<void>((resolve) => upstream.server.listen(0, '127.0.0.1', resolve));
    return upstream;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        this.requests.push(head);
        const { bytes, close } = this.respond(head);
        socket.write(bytes);
        if (close) socket.end();
      }
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface RawResponse {
  status: number;
  reason: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Names in the order received, as sent. */
  names: string[];
  body: Buffer;
}

/** One client connection to `port`, bytes in, parsed responses out. */
export class RawClient {
  private buffer = Buffer.alloc(0);
  private ended = false;
  private waiter: (() => void) | undefined;
  readonly socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** The connection was closed by the other side (after everything it sent was read). */
  get closed(): boolean {
    return this.ended;
  }

  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** Reads one response; `head`: the request was HEAD (no body). Rejects if the connection ends first. */
  async read(options: { head?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    for (;;) {
      const parsed = this.tryParse(options.head ?? false);
      if (parsed !== undefined) return parsed;
      if (this.ended) throw new Error(`connection closed after ${this.buffer.length} unparsed bytes: ${JSON.stringify(this.buffer.toString('latin1').slice(0, 200))}`);
      if (Date.now() > deadline) throw new Error('no complete response in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  /** Writes a request and reads its response. */
  async exchange(bytes: string | Buffer, options: { head?: boolean } = {}): Promise<RawResponse> {
    this.write(bytes);
    return this.read(options);
  }

  /** Resolves once the other side has closed the connection. */
  async waitClosed(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('the connection was not closed');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private tryParse(isHead: boolean): RawResponse | undefined {
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const lines = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
    const match = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0]);
    if (!match) throw new Error(`not a status line: ${JSON.stringify(lines[0])}`);
    const status = Number(match[1]);
    const headers: Record<string, string> = {};
    const names: string[] = [];
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon);
      const lower = name.toLowerCase();
      const value = line.slice(colon + 1).trim();
      names.push(name);
      headers[lower] = headers[lower] === undefined ? value : `${headers[lower]}, ${value}`;
    }
    const bodyStart = end + 4;
    const consume = (bodyEnd: number, body: Buffer): RawResponse => {
      this.buffer = this.buffer.subarray(bodyEnd);
      return { status, reason: match[2], headers, names, body };
    };
    if (status === 100) {
      this.buffer = this.buffer.subarray(bodyStart);
      return { status, reason: match[2], headers, names, body: Buffer.alloc(0) };
    }
    if (isHead || status === 204 || status === 304) return consume(bodyStart, Buffer.alloc(0));
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (this.buffer.length - bodyStart < length) return undefined;
      return consume(bodyStart + length, this.buffer.subarray(bodyStart, bodyStart + length));
    }
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) return this.parseChunked(bodyStart, consume);
    if (!this.ended) return undefined;
    return consume(this.buffer.length, this.buffer.subarray(bodyStart));
  }

  private parseChunked(at: number, consume: (end: number, body: Buffer) => RawResponse): RawResponse | undefined {
    const parts: Buffer[] = [];
    let position = at;
    for (;;) {
      const lineEnd = this.buffer.indexOf('\r\n', position);
      if (lineEnd < 0) return undefined;
      const size = parseInt(this.buffer.subarray(position, lineEnd).toString('latin1'), 16);
      if (size === 0) {
        if (this.buffer.length < lineEnd + 4) return undefined;
        if (this.buffer[lineEnd + 2] === 13 && this.buffer[lineEnd + 3] === 10) return consume(lineEnd + 4, Buffer.concat(parts));
        const trailerEnd = this.buffer.indexOf('\r\n\r\n', lineEnd + 2);
        if (trailerEnd < 0) return undefined;
        return consume(trailerEnd + 4, Buffer.concat(parts));
      }
      if (this.buffer.length < lineEnd + 2 + size + 2) return undefined;
      parts.push(this.buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
      position = lineEnd + 2 + size + 2;
    }
  }
}
