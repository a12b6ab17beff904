import type { ServicePolicy } from '../config/types';
import type { ServerResponse } from 'node:http';
import { SwitchboardError } from '../errors';
import { counter } from '../metrics';
import { sendError } from './respond';
import { realScheduler, type Scheduler } from '../clock';

/** The service's `limits` policy (src/config/schema.ts: Envoy's circuit breaker default of 1024). */
export type ConcurrencyLimitConfig = ServicePolicy['limits'];

export interface ConcurrencyLimiterOptions {
  service: string;
  config: Readonly<ConcurrencyLimitConfig>;
  scheduler?: Scheduler;
}

interface Waiter {
  resolve: (granted: boolean) => void;
  cancelTimer: () => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

const rejectionsTotal = counter(
  'switchboard_proxy_overload_rejections_total',
  'Requests rejected with 503 overloaded by the per-service concurrency limit.',
  ['service'],
);

/**
 * Per-service max concurrent and max pending requests. `acquire()` answers synchronously
 * while a slot is free (no promise, no allocation) or when the service is full and nothing
 * may wait; only a request that has to queue gets a promise. A released slot goes straight
 * to the oldest waiter.
 *
 *   const slot = limiter.acquire();
 *   if (slot === true) forward();
 *   else if (slot === false) writeOverloaded(res, …);
 *   else slot.then((granted) => (granted ? forward() : writeOverloaded(res, …)));
 *
 * Every `true` (immediate or resolved) must be paired with exactly one `release()`.
 */
export class ConcurrencyLimiter {
  readonly service: string;
  readonly config: Readonly<ConcurrencyLimitConfig>;
  private readonly scheduler: Scheduler;
  private inUse = 0;
  private readonly waiters: Waiter[] = [];

  constructor(options: ConcurrencyLimiterOptions) {
    this.service = options.service;
    this.config = options.config;
    this.scheduler = options.scheduler ?? realScheduler;
  }

  /**
   * true: a slot is yours. false: overloaded (counted). A promise: queued; resolves true with a
   * slot, or false when the wait times out (counted) or `signal` aborts (the client left; not
   * counted as overload).
   */
  acquire(signal?: AbortSignal): boolean | Promise<boolean> {
    if (this.inUse < this.config.maxConcurrent) {
      this.inUse++;
      return true;
    }
    if (this.waiters.length >= this.config.maxPending || signal?.aborted) {
      if (!signal?.aborted) rejectionsTotal.inc({ service: this.service });
      return false;
    }
    return this.enqueue(signal);
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) {
      // The slot changes hands; inUse stays the same.
      this.settle(next, true);
      return;
    }
    if (this.inUse > 0) this.inUse--;
  }

  get active(): number {
    return this.inUse;
  }

  /** Every slot is taken: the next `acquire` queues or is rejected. */
  get saturated(): boolean {
    return this.inUse >= this.config.maxConcurrent;
  }

  get pending(): number {
    return this.waiters.length;
  }

  /** Shutdown: every waiter is turned away (not counted as overload) and its timer cleared. */
  close(): void {
    for (const waiter of this.waiters.splice(0)) this.settle(waiter, false);
  }

  private enqueue(signal: AbortSignal | undefined): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = { resolve, signal, cancelTimer: () => undefined };
      waiter.cancelTimer = this.scheduler.schedule(this.config.maxPendingWait, () => {
        if (!this.drop(waiter)) return;
        rejectionsTotal.inc({ service: this.service });
        this.settle(waiter, false);
      });
      if (signal) {
        waiter.onAbort = () => {
          if (this.drop(waiter)) this.settle(waiter, false);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
    });
  }

  /** Remove a waiter from the queue; false if it was already gone. */
  private drop(waiter: Waiter): boolean {
    const index = this.waiters.indexOf(waiter);
    if (index < 0) return false;
    this.waiters.splice(index, 1);
    return true;
  }

  private settle(waiter: Waiter, granted: boolean): void {
    waiter.cancelTimer();
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    waiter.resolve(granted);
  }
}

/** The proxy's 503 for a full service; `Retry-After: 1` invites a well-behaved client back soon. */
export function writeOverloaded(res: ServerResponse, message: string): void {
  sendError(res, new SwitchboardError('overloaded', message), RETRY_AFTER);
}

const RETRY_AFTER: readonly string[] = ['retry-after', '1'];
