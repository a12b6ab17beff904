/**
 * A bounded load generator for resilience tests: `total` requests over `concurrency`
 * keep-alive connections, each with its own x-request-id, every outcome recorded.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface LoadOptions {
  host: string;
  port: number;
  /** Host header. */
  hostHeader: string;
  path: string;
  method?: string;
  body?: Buffer;
  total: number;
  concurrency: number;
  idPrefix: string;
  /** The response header that names the instance (default x-backend). */
  backendHeader?: string;
  /** Stop sending new requests this long after the start, even before `total`. */
  stopAfterMs?: number;
  /** Called after each completed request with the number completed so far. */
  onProgress?: (completed: number) => void;
  /** A request without an answer by then counts as failed (a safety net, not a measurement). */
  requestTimeoutMs?: number;
}

export interface Outcome {
  id: string;
  status?: number;
  error?: string;
  backend?: string;
  /** When it was sent and how long it took (performance.now() ms). */
  sentAt: number;
  ms: number;
}

export interface LoadResult {
  outcomes: Outcome[];
  /** Outcomes that are not a 2xx. */
  failures: Outcome[];
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const outcomes: Outcome[] = [];
  let next = 0;
  const stopAt = performance.now() + (options.stopAfterMs ?? Infinity);
  const worker = async (): Promise<void> => {
    while (next < options.total && performance.now() < stopAt) {
      const id = `${options.idPrefix}-${next++}`;
      outcomes.push(await once(options, agent, id));
      options.onProgress?.(outcomes.length);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return { outcomes, failures: outcomes.filter((o) => o.status === undefined || o.status < 200 || o.status > 299) };
}

function once(options: LoadOptions, agent: http.Agent, id: string): Promise<Outcome> {
  const sentAt = performance.now();
  const timed = (o: Omit<Outcome, 'sentAt' | 'ms'>): Outcome => ({ ...o, sentAt, ms: performance.now() - sentAt });
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: options.host,
        port: options.port,
        path: options.path,
        method: options.method ?? 'GET',
        agent,
        headers: { host: options.hostHeader, 'x-request-id': id },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(timed({ id, status: res.statusCode, backend: res.headers[options.backendHeader ?? 'x-backend'] as string | undefined })));
        res.on('error', (err) => resolve(timed({ id, error: err.message })));
      },
    );
    req.setTimeout(options.requestTimeoutMs ?? 10_000, () => req.destroy(new Error('client-side safety timeout')));
    req.on('error', (err) => resolve(timed({ id, error: err.message })));
    req.end(options.body);
  });
}
