/** The bare http-proxy script (bare-http-proxy-script.ts) as a peer. */
import path from 'node:path';
import { ManagedProcess } from '../child';
import { APP_HOST, type PeerFactory, type RunningPeer } from './peer';

export const bareHttpProxyPeer: PeerFactory = {
  name: 'bare-http-proxy',
  needs: [],
  async unavailable() {
    return undefined;
  },
  async start(ctx): Promise<RunningPeer> {
    const script = path.join(__dirname, 'bare-http-proxy-script.js');
    const route = `${APP_HOST}=http://127.0.0.1:${ctx.backends.appPort}`;
    const proc = new ManagedProcess(process.execPath, [script, '--listen', '127.0.0.1:0', '--route', route]);
    const address = await proc.waitForLine('its listening address', parseListening);
    return {
      name: 'bare-http-proxy',
      baseUrl: `http://${address}`,
      host: APP_HOST,
      pid: proc.pid,
      stop: () => proc.stop(2000),
    };
  },
};

function parseListening(line: string): string | undefined {
  try {
    const parsed = JSON.parse(line) as { listening?: unknown };
    return typeof parsed.listening === 'string' ? parsed.listening : undefined;
  } catch {
    return undefined;
  }
}
