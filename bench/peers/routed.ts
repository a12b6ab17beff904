/** Waiting for a proxy to route a Host: how every Switchboard peer knows it is ready. */
import { waitFor } from '../child';
import { httpRequest, keepAliveAgent } from '../http';

/** GET through the proxy until `host` routes to a 200. */
export async function waitUntilRouted(proxyUrl: string, host: string, timeoutMs = 15_000): Promise<void> {
  const agent = keepAliveAgent(1);
  try {
    await waitFor(`${host} to route through ${proxyUrl}`, async () => {
      const res = await httpRequest(`${proxyUrl}/small`, { headers: { host }, agent });
      return res.status === 200;
    }, timeoutMs);
  } finally {
    agent.destroy();
  }
}
