import { ClientClosedError, Etcd3, isRecoverableError } from 'etcd3';
import { SwitchboardError } from '../../errors';

/**
 * One etcd3 client plus the rule every etcd call here follows: a call either finishes within
 * its time budget or fails with `store_unavailable` (API 503). Without the budget a request
 * to a cluster with no quorum waits for etcd's own ~7 s proposal timeout, again and again.
 * Shared by the etcd store and the etcd election.
 */

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
const RETRY_BASE_MS = 50;
const RETRY_MAX_MS = 500;
const MIN_ATTEMPT_MS = 1000;
/** grpc-js's default 4 MiB would cap a full range read of a large catalog. */
const MAX_RECEIVE_BYTES = 256 * 1024 * 1024;

export interface CallBudget {
  /** Absolute gRPC deadline (ms since epoch) of this attempt. */
  deadline: number;
}

export class EtcdConnection {
  readonly client: Etcd3;
  private closed = false;

  constructor(
    endpoints: string[],
    readonly requestTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
  ) {
    if (endpoints.length === 0) {
      throw new SwitchboardError('config_invalid', 'etcd needs at least one endpoint', { field: 'store.etcd.endpoints' });
    }
    this.client = new Etcd3({
      hosts: endpoints,
      grpcOptions: {
        'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
        // Notice a silently dead member under a long-lived watch stream. etcd rejects pings
        // more often than every 5 s, so stay above that.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
      },
    });
  }

  /**
   * Run `fn` (one etcd RPC), retrying transient failures — another endpoint, a leader
   * election in progress — until `timeoutMs` is spent; then reject with store_unavailable.
   * etcd3's own pool already skips endpoints whose circuit is open.
   *
   * One attempt gets only part of the budget: a request a follower forwarded to a leader
   * that just died is never answered before etcd's own ~7 s timeout, while a retry reaches
   * the new leader in about an election timeout. The price is etcd's usual ambiguity: an
   * abandoned write may still have been applied, so a retried compare-and-swap can report
   * ok: false for a change that did land (callers re-read on conflict anyway).
   */
  async call<T>(what: string, fn: (budget: CallBudget) => Promise<T>, timeoutMs = this.requestTimeoutMs): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    const attemptMs = Math.max(MIN_ATTEMPT_MS, timeoutMs / 2);
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new SwitchboardError('store_unavailable', `etcd ${what}: client closed`);
      try {
        return await fn({ deadline: Math.min(deadline, Date.now() + attemptMs) });
      } catch (err) {
        if (!isUnavailable(err)) throw err;
        const pause = Math.min(RETRY_BASE_MS * 2 ** attempt, RETRY_MAX_MS);
        if (Date.now() + pause >= deadline) throw storeUnavailable(what, err);
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }
}

/**
 * Transient: the call may succeed on another endpoint or a little later (no leader,
 * connection refused, deadline exceeded, every endpoint's circuit open, client closed).
 */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof SwitchboardError) return err.code === 'store_unavailable';
  return (
    isRecoverableError(err) ||
    err instanceof ClientClosedError ||
    // cockatiel's BrokenCircuitError (etcd3's per-endpoint circuit breaker), duck-typed
    // so we need not depend on cockatiel directly.
    (err as { isBrokenCircuitError?: unknown }).isBrokenCircuitError === true
  );
}

export function storeUnavailable(what: string, cause: unknown): SwitchboardError {
  if (cause instanceof SwitchboardError && cause.code === 'store_unavailable') return cause;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new SwitchboardError('store_unavailable', `etcd ${what} failed: ${reason}`, { cause });
}

/** Non-transient etcd errors pass through; transient ones become store_unavailable. */
export function mapEtcdError(what: string, err: unknown): unknown {
  return isUnavailable(err) ? storeUnavailable(what, err) : err;
}

/** The end of etcd's key range "every key starting with `prefix`". */
export function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  // Empty prefix (or all 0xff): "\0" means "every key >= key".
  return Buffer.from([0]);
}

/** etcd rejects an empty key; "\0" is the smallest key and, with range end "\0", means all keys. */
export function rangeStart(prefix: Buffer): Buffer {
  return prefix.length === 0 ? Buffer.from([0]) : prefix;
}

/** etcd sends int64 fields as decimal strings; revisions stay far below 2^53. */
export function toNumber(value: string | number | undefined): number {
  return value === undefined ? 0 : Number(value);
}
