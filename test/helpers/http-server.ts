/**
 * Test HTTP servers bind to 127.0.0.1 on a free port and close without waiting for clients.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on 127.0.0.1, port 0; rejects if the bind fails. Resolves with the port. */
export async function listenOnLoopback(server: http.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return portOf(server);
}

export function portOf(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}

/** Drops open connections (keep-alive ones would hold close() up), then closes. */
export async function closeNow(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
