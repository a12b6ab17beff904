/**
 * What one instance's answers take lately, as an exponentially weighted moving average whose
 * weights follow time, not request counts (Finagle's and Linkerd's EWMA): a sample's weight is
 * 1 − e^(−Δt/decay), Δt being the time since the previous sample. A busy instance and a
 * barely used one both forget at the same pace, so an instance that got slow is noticed
 * within about one `decay` whatever its share of traffic, and one that recovered is trusted
 * again as fast.
 *
 * The first samples are averaged by count instead (the bias correction of an EWMA's start),
 * so a slow first answer — a new connection, a cold JIT — is diluted as answers come.
 *
 * Plain rather than Linkerd's peak-EWMA: a peak estimate jumps to every outlier, so one GC
 * pause on a fast instance would cut its traffic for a whole decay period; hangs are the
 * adaptive per-try timeout's job (a timed-out try is recorded here at what it cost).
 */
const SAME_TICK_MS = 0.1;

export class InstanceLatency {
  /** Milliseconds; meaningful once `samples` > 0. */
  private value = 0;
  private stamp = 0;
  /** Samples since it (re)entered rotation. */
  samples = 0;

  observe(ms: number, now: number, decayMs: number): void {
    if (this.samples === 0) {
      this.value = ms;
    } else {
      // Samples in the same millisecond tick of the clock still count, a little.
      const elapsed = Math.max(now - this.stamp, SAME_TICK_MS);
      // While samples are few they are averaged by count: one cold-connection or JIT outlier
      // among the first answers must not stand for the instance for a whole decay period.
      const weight = Math.min(Math.exp(-elapsed / decayMs), 1 - 1 / (this.samples + 1));
      this.value = this.value * weight + ms * (1 - weight);
    }
    this.stamp = now;
    this.samples++;
  }

  /** The estimate (ms), or undefined before the first sample. */
  get estimate(): number | undefined {
    return this.samples > 0 ? this.value : undefined;
  }

  reset(): void {
    this.value = 0;
    this.stamp = 0;
    this.samples = 0;
  }
}
