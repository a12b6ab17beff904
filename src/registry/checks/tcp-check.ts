import net from 'node:net';
import type { Check as CheckRecord } from '../../catalog/model';
import { type Check, type CheckResult, deadline, errorText, timeoutOf } from './check';

/**
 * Consul's TCP check: passing when a connection to `host:port` opens within the Timeout,
 * critical otherwise. The connection is closed at once; nothing is sent.
 */
export class TcpCheck implements Check {
  async run(check: CheckRecord, signal: AbortSignal): Promise<CheckResult> {
    const target = check.tcp ?? '';
    const timeoutMs = timeoutOf(check);
    const limit = deadline(signal, timeoutMs);
    try {
      await connect(target, limit.signal);
      return { status: 'passing', output: `TCP connect ${target}: Success` };
    } catch (err) {
      const reason = limit.timedOut() ? `timed out after ${timeoutMs} ms` : errorText(err);
      return { status: 'critical', output: `TCP connect ${target}: ${reason}` };
    } finally {
      limit.dispose();
    }
  }
}

/** `host:port` or `[v6]:port` (validated at registration). */
export function splitHostPort(target: string): { host: string; port: number } {
  const at = target.lastIndexOf(':');
  return { host: target.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(target.slice(at + 1)) };
}

function connect(target: string, signal: AbortSignal): Promise<void> {
  const { host, port } = splitHostPort(target);
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const socket = net.connect({ host, port });
    const onAbort = () => {
      socket.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve();
    });
    socket.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(err);
    });
  });
}
