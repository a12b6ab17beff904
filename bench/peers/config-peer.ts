/**
 * Shared start-up for peers driven by a generated config file (nginx, HAProxy): they need a
 * fixed port in the file, so we take a free one, start the server in the foreground, and wait
 * until it accepts connections. A lost port race shows as an early exit; we retry.
 */
import { canConnect, freePort, hasCommand, ManagedProcess, waitFor } from '../child';
import { APP_HOST, type PeerContext, type PeerName, type RunningPeer, withPortRetries } from './peer';

export interface ConfigPeerSpec {
  name: PeerName;
  command: string;
  /** Writes the config for `port` into ctx.dir; returns the command's arguments. */
  configure(ctx: PeerContext, port: number): string[];
}

export async function commandMissing(command: string): Promise<string | undefined> {
  return (await hasCommand(command)) ? undefined : `${command} is not installed`;
}

export function startConfigPeer(spec: ConfigPeerSpec, ctx: PeerContext): Promise<RunningPeer> {
  return withPortRetries(3, async () => {
    const port = await freePort();
    const proc = new ManagedProcess(spec.command, spec.configure(ctx, port));
    try {
      await waitFor(`${spec.name} to accept connections on ${port}`, async () => {
        if (!proc.running()) throw new Error(`${spec.name} exited:\n${proc.tail.text()}`);
        return canConnect(port);
      });
    } catch (err) {
      await proc.stop(1000);
      throw err;
    }
    return {
      name: spec.name,
      baseUrl: `http://127.0.0.1:${port}`,
      host: APP_HOST,
      pid: proc.pid,
      stop: () => proc.stop(3000),
    };
  });
}
