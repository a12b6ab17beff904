/**
 * A tiny upstream for resilience tests, run as its own process so a test can SIGKILL it:
 *   node dist/test/helpers/backend-script.js <id>
 * Prints `LISTENING <port>` once bound, and `REQ <method> <x-request-id>` for every request
 * as soon as its headers arrive (stdout is a pipe, written synchronously on Linux, so a line
 * is out before the process can be killed after it). Reads commands on stdin:
 *   `mode ok` (200), `mode 500` (500 to everything), `mode hang` (accept, never answer),
 *   `mode slow` (200, but 20× the asked delay: an instance that answers correctly, slowly).
 * Exits when stdin closes, so it never outlives the test process.
 * `?delay=<ms>` delays the answer (keeps requests in flight).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const id = process.argv[2] ?? 'backend';
let mode: 'ok' | '500' | 'hang' | 'slow' = 'ok';

const server = http.createServer((req, res) => {
  process.stdout.write(`REQ ${req.method} ${String(req.headers['x-request-id'] ?? '-')}\n`);
  if (mode === 'hang') {
    req.resume();
    return;
  }
  const delay = Number(/[?&]delay=(\d+)/.exec(req.url ?? '')?.[1] ?? 0) * (mode === 'slow' ? 20 : 1);
  const status = mode === '500' ? 500 : 200;
  let received = 0;
  req.on('data', (chunk: Buffer) => (received += chunk.length));
  req.on('end', () => {
    const body = JSON.stringify({ backend: id, received });
    const answer = (): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-backend': id });
      res.end(body);
    };
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  });
});
server.keepAliveTimeout = 60_000;

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${(server.address() as AddressInfo).port}\n`);
});

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  input += chunk;
  let newline: number;
  while ((newline = input.indexOf('\n')) >= 0) {
    const line = input.slice(0, newline).trim();
    input = input.slice(newline + 1);
    const m = /^mode (ok|500|hang|slow)$/.exec(line);
    if (m) {
      mode = m[1] as typeof mode;
      process.stdout.write(`MODE ${mode}\n`);
    }
  }
});
process.stdin.on('end', () => process.exit(0));
