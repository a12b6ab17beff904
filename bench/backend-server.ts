/**
 * The backends every peer forwards to, run as one child process of the harness (so their CPU
 * is not the proxies' and their event loop is not the load generator's). The harness drives
 * it over IPC: open and close instances (one listener each, 127.0.0.1:0), read which
 * instance saw a request when (churn, slow), and make an instance slow or hung (slow).
 *
 * Routes, the same on every instance:
 *   GET  /small   a 64-byte body
 *   GET  /big     1 MiB, from one preallocated buffer
 *   POST /upload  a sink: reads the body, answers with its length
 * Every response carries `x-instance: <id>`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { monotonicMs } from './clock';
import type { BackendReply, BackendRequest } from './backend-protocol';

const SMALL_BODY = Buffer.from('ok'.padEnd(63, '.') + '\n');
const BIG_BODY = Buffer.alloc(1024 * 1024, 'x');

interface Instance {
  server: http.Server;
  port: number;
  /** Arrival times (monotonic ms), only for instances opened with `track`. */
  arrivals?: number[];
  /** Every answer waits this long (ms). */
  delayMs: number;
  /** Accept requests, never answer them. */
  hang: boolean;
}

const instances = new Map<string, Instance>();

function handle(id: string, instance: () => Instance | undefined, req: http.IncomingMessage, res: http.ServerResponse): void {
  const state = instance();
  state?.arrivals?.push(monotonicMs());
  res.setHeader('x-instance', id);
  if (state?.hang) {
    req.resume();
    return;
  }
  if (req.method === 'POST' || req.method === 'PUT') return sink(req, res);
  const body = req.url?.startsWith('/big') ? BIG_BODY : SMALL_BODY;
  const answer = (): void => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  };
  if (state !== undefined && state.delayMs > 0) setTimeout(answer, state.delayMs);
  else answer();
}

function sink(req: http.IncomingMessage, res: http.ServerResponse): void {
  let bytes = 0;
  req.on('data', (chunk: Buffer) => (bytes += chunk.length));
  req.on('end', () => {
    const body = JSON.stringify({ bytes });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

async function open(id: string, track: boolean): Promise<number> {
  if (instances.has(id)) throw new Error(`instance ${id} is already open`);
  const server = http.createServer((req, res) => handle(id, () => instances.get(id), req, res));
  // Proxies keep upstream connections for a long time (nginx 60 s); a backend that closed them
  // first would turn every idle gap between rounds into a reset race.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  instances.set(id, { server, port, arrivals: track ? [] : undefined, delayMs: 0, hang: false });
  return port;
}

async function close(id: string): Promise<void> {
  const instance = instances.get(id);
  if (!instance) return;
  instances.delete(id);
  // Like a real instance shutting down: idle keep-alive sockets go now, requests in flight
  // may finish, and whatever is still open after a bound is cut.
  await new Promise<void>((resolve) => {
    const force = setTimeout(() => instance.server.closeAllConnections(), instance.hang ? 0 : 2000);
    instance.server.close(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

function arrivals(ids: string[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const id of ids) out[id] = instances.get(id)?.arrivals ?? [];
  return out;
}

async function execute(request: BackendRequest): Promise<BackendReply> {
  switch (request.op) {
    case 'open':
      return { seq: request.seq, port: await open(request.id, request.track) };
    case 'close':
      await close(request.id);
      return { seq: request.seq };
    case 'arrivals':
      return { seq: request.seq, arrivals: arrivals(request.ids) };
    case 'behave': {
      const instance = instances.get(request.id);
      if (!instance) throw new Error(`no instance ${request.id}`);
      instance.hang = request.hang;
      instance.delayMs = request.delayMs;
      return { seq: request.seq };
    }
  }
}

function main(): void {
  if (!process.send) throw new Error('backend-server must be started with an IPC channel');
  process.on('message', (message: BackendRequest) => {
    execute(message).then(
      (reply) => process.send?.(reply),
      (err: Error) => process.send?.({ seq: message.seq, error: err.message }),
    );
  });
  // The harness going away closes the channel: nothing is left to serve.
  process.on('disconnect', () => process.exit(0));
  process.send({ seq: 0, ready: true } satisfies BackendReply);
}

main();
