/**
 * Time as the proxy's health and overload modules and the registry's check runner see it.
 * Injected so unit tests drive a fake clock instead of sleeping; production uses
 * `realScheduler`. Timers are left ref'd on purpose: a module that forgets to stop its
 * timers keeps a test process alive, which is how we notice.
 */
export interface Scheduler {
  now(): number;
  /** Runs `fn` once after `ms`; the returned function cancels it (safe to call twice). */
  schedule(ms: number, fn: () => void): () => void;
}

export const realScheduler: Scheduler = {
  now: () => Date.now(),
  schedule(ms, fn) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};
