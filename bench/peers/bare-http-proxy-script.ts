/**
 * What a Node user would write instead of Switchboard: http-proxy, a keep-alive agent, a
 * Host → target map and an error handler. Nothing else (no discovery, health, retries, metrics).
 *
 *   node bare-http-proxy-script.js --listen 127.0.0.1:0 --route app.svc=http://127.0.0.1:3000
 *
 * Prints {"listening":"127.0.0.1:<port>"} once it accepts connections.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import httpProxy from 'http-proxy';
import { parseScriptArgs, printListening } from './script-peer';

function main(): void {
  const { host, port, routes } = parseScriptArgs(process.argv.slice(2));
  // Without a keep-alive agent http-proxy sends `Connection: close` upstream (http-proxy #929).
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const proxy = httpProxy.createProxyServer({ agent, xfwd: true });
  proxy.on('error', (_err, _req, res) => {
    // `res` is a socket for upgrades; we only proxy plain HTTP here.
    if (res instanceof http.ServerResponse && !res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
    }
    res.end();
  });
  const server = http.createServer((req, res) => {
    const target = routes.get((req.headers.host ?? '').split(':')[0].toLowerCase());
    if (target === undefined) {
      res.writeHead(404).end();
      return;
    }
    proxy.web(req, res, { target });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, host, () => {
    printListening(server.address() as AddressInfo);
  });
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    // Idle keep-alive sockets would hold close() open; the harness does not wait for drains.
    server.closeAllConnections();
  });
}

main();
