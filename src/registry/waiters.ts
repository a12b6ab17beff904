/**
 * Parked callers of the catalog view (blocking queries, read-your-writes). Every wait is
 * bounded by a timer and can be cancelled by a signal; whichever ends it first removes the
 * timer and the listener, so an abandoned request leaves nothing behind.
 */
import { MinHeap } from './min-heap';

interface Parked {
  finish(woken: boolean): void;
}

/** Parks one caller until `finish`, the timeout or the signal; resolves true only when finished. */
export function park(timeoutMs: number, signal: AbortSignal | undefined, register: (p: Parked) => () => void): Promise<boolean> {
  return new Promise((resolve) => {
    let unregister: () => void = () => undefined;
    const settle = (woken: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      unregister();
      resolve(woken);
    };
    const onAbort = () => settle(false);
    const timer = setTimeout(() => settle(false), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    unregister = register({ finish: settle });
  });
}

/** Blocking-query waiters, keyed by service name (undefined = catalog-wide). */
export class ChangeWaiters {
  private readonly byKey = new Map<string | undefined, Set<Parked>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Resolves true when woken for `key`, false on timeout or abort. */
  wait(key: string | undefined, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    return park(timeoutMs, signal, (parked) => {
      let set = this.byKey.get(key);
      if (!set) this.byKey.set(key, (set = new Set()));
      set.add(parked);
      this.count++;
      return () => {
        if (!set.delete(parked)) return;
        this.count--;
        if (set.size === 0 && this.byKey.get(key) === set) this.byKey.delete(key);
      };
    });
  }

  /** Wake catalog-wide waiters and the waiters of each listed service. */
  wake(services: Iterable<string>): void {
    this.finishKey(undefined);
    for (const s of services) this.finishKey(s);
  }

  wakeAll(): void {
    for (const key of [...this.byKey.keys()]) this.finishKey(key);
  }

  private finishKey(key: string | undefined): void {
    const set = this.byKey.get(key);
    if (!set) return;
    for (const parked of [...set]) parked.finish(true);
  }
}

/**
 * Callers waiting until the view has applied a revision. Kept in a min-heap by revision so
 * each applied batch costs O(released × log n), not a pass over everyone parked; an entry
 * that timed out stays in the heap (stale) until it surfaces or the heap is compacted.
 */
export class RevWaiters {
  private readonly parked = new Map<Parked, number>();
  private readonly heap = new MinHeap<{ rev: number; parked: Parked }>((e) => e.rev);

  get size(): number {
    return this.parked.size;
  }

  wait(rev: number, timeoutMs: number): Promise<boolean> {
    return park(timeoutMs, undefined, (parked) => {
      this.parked.set(parked, rev);
      this.heap.push({ rev, parked });
      return () => {
        this.parked.delete(parked);
        this.compactIfMostlyStale();
      };
    });
  }

  /** The view now includes `rev`: release everyone waiting for it or earlier. */
  reached(rev: number): void {
    for (let top = this.heap.peek(); top && top.rev <= rev; top = this.heap.peek()) {
      this.heap.pop();
      if (this.parked.has(top.parked)) top.parked.finish(true);
    }
  }

  /** Release everyone as not reached (shutdown). */
  abandonAll(): void {
    for (const parked of [...this.parked.keys()]) parked.finish(false);
    this.heap.clear();
  }

  /** Waits that timed out for a revision far ahead would otherwise pile up in the heap. */
  private compactIfMostlyStale(): void {
    if (this.heap.size <= 2 * this.parked.size + 64) return;
    this.heap.clear();
    for (const [parked, rev] of this.parked) this.heap.push({ rev, parked });
  }
}
