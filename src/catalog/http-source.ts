import { SwitchboardError, type ErrorCode } from '../errors';
import type { CatalogDelta } from './model';
import type { CatalogSource } from './source';

export interface HttpSourceOptions {
  /** Per request; a `min` wait on the registry side is at most ~5 s. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const KNOWN_CODES = new Set<ErrorCode>(['bad_request', 'not_found', 'conflict', 'store_unavailable']);

/**
 * A CatalogSource over a registry's HTTP API (`switchboard proxy`). Every failure — network,
 * timeout, a registry answering 5xx or nonsense — rejects with a SwitchboardError carrying a
 * code, so the caller can log it and keep serving from what it has.
 */
export class HttpSource implements CatalogSource {
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly inFlight = new Set<AbortController>();

  constructor(registryUrl: string, options: HttpSourceOptions = {}) {
    this.base = registryUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  async changes(sinceRev: number, minRev?: number): Promise<CatalogDelta> {
    const query = new URLSearchParams({ since: String(sinceRev) });
    if (minRev !== undefined) query.set('min', String(minRev));
    const body = await this.getJson(`${this.base}/v1/switchboard/changes?${query.toString()}`);
    if (!isDelta(body)) throw unavailable(`${this.base} answered something that is not a catalog delta`);
    return body;
  }

  /** Aborts requests still in flight. */
  async close(): Promise<void> {
    for (const controller of this.inFlight) controller.abort();
    this.inFlight.clear();
  }

  private async getJson(url: string): Promise<unknown> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    this.inFlight.add(controller);
    try {
      const response = await fetch(url, { signal: controller.signal, headers: { accept: 'application/json' } });
      const body: unknown = await response.json().catch(() => undefined);
      if (!response.ok) throw errorFromResponse(url, response.status, body);
      return body;
    } catch (err) {
      if (err instanceof SwitchboardError) throw err;
      const reason = controller.signal.aborted ? `no answer within ${this.timeoutMs} ms` : describe(err);
      throw unavailable(`registry unreachable at ${url}: ${reason}`, err);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }
  }
}

function errorFromResponse(url: string, status: number, body: unknown): SwitchboardError {
  const payload = (typeof body === 'object' && body !== null ? body : {}) as { error?: unknown; message?: unknown };
  const message = typeof payload.message === 'string' ? payload.message : `HTTP ${status}`;
  const code = payload.error as ErrorCode;
  if (status < 500 && KNOWN_CODES.has(code)) return new SwitchboardError(code, `${url}: ${message}`);
  return unavailable(`${url}: ${message}`);
}

function unavailable(message: string, cause?: unknown): SwitchboardError {
  return new SwitchboardError('store_unavailable', message, cause === undefined ? {} : { cause });
}

/** fetch wraps the socket error (ECONNREFUSED…) in `cause`; that is the useful part. */
function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.code;
  return err instanceof Error ? err.message : String(err);
}

function isDelta(value: unknown): value is CatalogDelta {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.rev === 'number' &&
    typeof v.full === 'boolean' &&
    typeof v.services === 'object' &&
    v.services !== null &&
    Object.values(v.services).every(Array.isArray)
  );
}
