/**
 * A peer that is one Node script of ours routing `Host: app.svc` to the app backend: the bare
 * http-proxy script, the @fastify/http-proxy one, the minimal undici forwarder. Each takes
 * `--listen HOST:PORT --route HOST=URL` and prints {"listening":"host:port"} once it accepts.
 */
import path from 'node:path';
import { ManagedProcess } from '../child';
import { APP_HOST, nodeCommand, type PeerFactory, type PeerName, type RunningPeer } from './peer';

export function scriptPeer(name: PeerName, script: string): PeerFactory {
  return {
    name,
    needs: [],
    async unavailable() {
      return undefined;
    },
    async start(ctx): Promise<RunningPeer> {
      const route = `${APP_HOST}=http://127.0.0.1:${ctx.backends.appPort}`;
      const run = nodeCommand(ctx, [path.join(__dirname, script), '--listen', '127.0.0.1:0', '--route', route]);
      const proc = new ManagedProcess(run.command, run.args);
      // Under a launcher (valgrind) node starts tens of times slower.
      const address = await proc.waitForLine('its listening address', parseListening, ctx.nodeLauncher ? 120_000 : undefined);
      return { name, baseUrl: `http://${address}`, host: APP_HOST, pid: proc.pid, stop: () => proc.stop(2000) };
    },
  };
}

/** `--listen` and `--route` arguments of the scripts. */
export function parseScriptArgs(argv: string[]): { host: string; port: number; routes: Map<string, string> } {
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

export function printListening(address: { address: string; port: number }): void {
  process.stdout.write(JSON.stringify({ listening: `${address.address}:${address.port}` }) + '\n');
}

function parseListening(line: string): string | undefined {
  try {
    const parsed = JSON.parse(line) as { listening?: unknown };
    return typeof parsed.listening === 'string' ? parsed.listening : undefined;
  } catch {
    return undefined;
  }
}
