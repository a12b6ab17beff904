import type { Check as CheckRecord, HealthStatus } from '../../catalog/model';

/**
 * The plug point for registry-side checks (Consul's HTTP and TCP checks): one probe of one
 * target. An implementation never throws for a failing target — that is a `critical` result —
 * and settles promptly once `signal` aborts (the runner cancels checks of deregistered
 * instances and everything on stop).
 */
export interface Check {
  run(check: CheckRecord, signal: AbortSignal): Promise<CheckResult>;
}

export interface CheckResult {
  status: HealthStatus;
  output: string;
}

/** Consul's default check Timeout. */
export const DEFAULT_CHECK_TIMEOUT_MS = 10_000;

/** Consul keeps at most 4 KiB of check output. */
export const MAX_CHECK_OUTPUT = 4096;

/** A signal that aborts on the caller's signal or after `timeoutMs`, whichever comes first. */
export interface Deadline {
  signal: AbortSignal;
  timedOut(): boolean;
  dispose(): void;
}

export function deadline(parent: AbortSignal, timeoutMs: number): Deadline {
  const controller = new AbortController();
  let expired = false;
  const onAbort = () => controller.abort(parent.reason);
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new Error(`timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  if (parent.aborted) onAbort();
  else parent.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => expired,
    dispose: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', onAbort);
    },
  };
}

export function timeoutOf(check: CheckRecord): number {
  return check.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
