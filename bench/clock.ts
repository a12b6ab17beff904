/**
 * Milliseconds on CLOCK_MONOTONIC. On Linux that clock is system-wide, so times taken in the
 * backend process and in the harness can be compared (churn: did a request arrive after its
 * instance was deregistered?).
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
