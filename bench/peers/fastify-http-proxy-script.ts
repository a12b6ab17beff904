/**
 * What a fastify user would write: fastify + @fastify/http-proxy (reply-from over undici),
 * one upstream per Host. No discovery, health or retries.
 */
import type { AddressInfo } from 'node:net';
import fastifyHttpProxy from '@fastify/http-proxy';
import Fastify from 'fastify';
import { parseScriptArgs, printListening } from './script-peer';

async function main(): Promise<void> {
  const { host, port, routes } = parseScriptArgs(process.argv.slice(2));
  const app = Fastify({ logger: false });
  // One Host in the bench; with more, one instance per Host under fastify's constraints.
  for (const [name, upstream] of routes) {
    await app.register(fastifyHttpProxy, { upstream, prefix: '/', constraints: { host: name }, http: { agentOptions: { keepAlive: true } } });
  }
  await app.listen({ host, port });
  printListening(app.server.address() as AddressInfo);
  process.on('SIGTERM', () => {
    app.server.closeAllConnections();
    void app.close().then(() => process.exit(0));
  });
}

void main();
