/**
 * The "Node ceiling" peer: about the least a Node forwarder can do per request — undici's
 * `Pool.dispatch` with raw header arrays, `writeHead(status, flatArray)` back, no streams for
 * body-less requests, a Host map. No hop-by-hop hygiene, no validation, no retries: it shows
 * what Switchboard's forwarding costs on top of the transport itself.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { parseScriptArgs, printListening } from './script-peer';

function main(): void {
  const { host, port, routes } = parseScriptArgs(process.argv.slice(2));
  const pools = new Map([...routes].map(([name, target]) => [name, new Pool(target, { connections: null, pipelining: 1 })]));
  const server = http.createServer((req, res) => {
    const pool = pools.get((req.headers.host ?? '').split(':')[0].toLowerCase());
    if (pool === undefined) {
      res.writeHead(404).end();
      return;
    }
    const headers: string[] = [];
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toLowerCase();
      if (name !== 'connection' && name !== 'keep-alive' && name !== 'transfer-encoding') headers.push(raw[i], raw[i + 1]);
    }
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    const handler = {
      onConnect() {},
      onHeaders(status: number, rawHeaders: Buffer[], resume: () => void) {
        const out: string[] = [];
        for (let i = 0; i < rawHeaders.length; i += 2) {
          const name = rawHeaders[i].toString('latin1');
          const lower = name.toLowerCase();
          if (lower !== 'connection' && lower !== 'keep-alive' && lower !== 'transfer-encoding') out.push(name, rawHeaders[i + 1].toString('latin1'));
        }
        res.writeHead(status, out);
        res.on('drain', resume);
        return true;
      },
      onData(chunk: Buffer) {
        return res.write(chunk);
      },
      onComplete() {
        res.end();
      },
      onError() {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      },
    };
    pool.dispatch({ method: req.method ?? 'GET', path: req.url ?? '/', headers, body: hasBody ? req : null } as Dispatcher.DispatchOptions, handler as unknown as Dispatcher.DispatchHandler);
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, host, () => printListening(server.address() as AddressInfo));
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

main();
