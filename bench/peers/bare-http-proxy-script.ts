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

function parseArgs(argv: string[]): { host: string; port: number; routes: Map<string, string> } {
  let listen = '127.0.0.1:0';
  const routes = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--listen') listen = argv[i + 1];
    else if (argv[i] === '--route') {
      const [host, target] = argv[i + 1].split('=');
      routes.set(host.toLowerCase(), target);
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  const colon = listen.lastIndexOf(':');
  return { host: listen.slice(0, colon), port: Number(listen.slice(colon + 1)), routes };
}

function main(): void {
  const { host, port, routes } = parseArgs(process.argv.slice(2));
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
    const address = server.address() as AddressInfo;
    process.stdout.write(JSON.stringify({ listening: `${address.address}:${address.port}` }) + '\n');
  });
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    // Idle keep-alive sockets would hold close() open; the harness does not wait for drains.
    server.closeAllConnections();
  });
}

main();
