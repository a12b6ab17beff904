import { fetch, type Dispatcher } from 'undici';
import { SwitchboardError, type ErrorCode } from '../errors';
import { checkedInstance } from './instance-shape';
import type { CatalogDelta, Instance } from './model';
import type { CatalogSource } from './source';

export interface HttpSourceOptions {
  /** ACL token sent as X-Consul-Token (the `token` setting). */
  token?: string;
  /**
   * Per request that the registry answers at once (default 2 s). A registry that accepts
   * but never answers costs a proxy this long before it fails over to the next one.
   */
  timeoutMs?: number;
  /**
   * How long a registry may hold a `changes` call with `minRev` while its view catches up
   * (the registry's revWaitMs, default 5 s); such calls get this on top of timeoutMs.
   */
  minRevWaitMs?: number;
  /** Connections to the registry (an https registry's CA: tls/client-tls.ts); fetch's default without. */
  dispatcher?: Dispatcher;
}

const DEFAULT_TIMEOUT_MS = 2000;
const DEFAULT_MIN_REV_WAIT_MS = 5000;
const KNOWN_CODES = new Set<ErrorCode>(['bad_request', 'not_found', 'conflict', 'store_unavailable']);

/**
 * A CatalogSource over a registry's HTTP API (`switchboard proxy`). Every failure — network,
 * timeout, a registry answering 5xx or nonsense — rejects with a SwitchboardError carrying a
 * code, so the caller can log it and keep serving from what it has.
 */
export class HttpSource implements CatalogSource {
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly minRevWaitMs: number;
  private readonly inFlight = new Set<AbortController>();
  private readonly headers: Record<string, string>;
  private readonly dispatcher: Dispatcher | undefined;

  constructor(registryUrl: string, options: HttpSourceOptions = {}) {
    this.base = registryUrl.replace(/\/+$/, '');
    this.headers = options.token === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'x-consul-token': options.token };
    this.timeoutMs = positive(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs');
    this.dispatcher = options.dispatcher;
    this.minRevWaitMs = positive(options.minRevWaitMs ?? DEFAULT_MIN_REV_WAIT_MS, 'minRevWaitMs');
  }

  async changes(sinceRev: number, minRev?: number): Promise<CatalogDelta> {
    const query = new URLSearchParams({ since: String(sinceRev) });
    if (minRev !== undefined) query.set('min', String(minRev));
    // Only a call with `min` may legitimately wait on the registry side.
    const timeoutMs = minRev === undefined ? this.timeoutMs : this.timeoutMs + this.minRevWaitMs;
    const body = await this.getJson(`${this.base}/v1/switchboard/changes?${query.toString()}`, timeoutMs);
    const delta = checkedDelta(body);
    if (delta === undefined) throw unavailable(`${this.base} answered something that is not a catalog delta`);
    return delta;
  }

  /** Aborts requests still in flight. */
  async close(): Promise<void> {
    for (const controller of this.inFlight) controller.abort();
    this.inFlight.clear();
  }

  private async getJson(url: string, timeoutMs: number): Promise<unknown> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    this.inFlight.add(controller);
    try {
      const response = await fetch(url, { signal: controller.signal, headers: this.headers, dispatcher: this.dispatcher });
      const body: unknown = await response.json().catch(() => undefined);
      if (!response.ok) throw errorFromResponse(url, response.status, body);
      return body;
    } catch (err) {
      if (err instanceof SwitchboardError) throw err;
      const reason = controller.signal.aborted ? `no answer within ${timeoutMs} ms` : describe(err);
      throw unavailable(`registry unreachable at ${url}: ${reason}`, err);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }
  }
}

function positive(value: number, field: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new SwitchboardError('config_invalid', `HttpSource ${field} must be a positive number of milliseconds`, { field });
  return value;
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

/**
 * The registry's answer, checked to the last field before anything routes on it: a registry
 * speaks for the catalog, not for the proxy's memory or its process. Every instance goes through
 * checkedInstance (types, ranges; shared parts, frozen) and must be listed under its own service.
 * One bad record refuses the whole answer: a registry never sends one (its view holds only
 * records it could decode), so whoever did is not trusted for the rest.
 */
function checkedDelta(value: unknown): CatalogDelta | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.rev !== 'number' || !Number.isSafeInteger(v.rev) || v.rev < 0 || typeof v.full !== 'boolean') return undefined;
  if (typeof v.services !== 'object' || v.services === null || Array.isArray(v.services)) return undefined;
  const services: Record<string, Instance[]> = {};
  for (const [name, list] of Object.entries(v.services)) {
    // No registry takes that name (service names are DNS labels); assigned, it would set the prototype.
    if (!Array.isArray(list) || name === '__proto__') return undefined;
    const checked: Instance[] = [];
    for (const item of list) {
      const instance = checkedInstance(item);
      if (instance === undefined || instance.service !== name) return undefined;
      checked.push(instance);
    }
    services[name] = checked;
  }
  return { rev: v.rev, full: v.full, services };
}
