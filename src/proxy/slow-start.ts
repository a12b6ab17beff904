import type { ServicePolicy } from '../config/types';

/**
 * Slow start (Envoy's slow_start_config): an instance that joins the rotation, or returns to
 * it, gets a share of its weight that grows over a window instead of its full share at once,
 * so a cold cache or JIT is not hit with a full load.
 *
 *   factor = max(minWeightPercent / 100, (elapsed / window) ^ (1 / aggression))
 *
 * aggression 1 ramps linearly; above 1 the weight rises faster at the start of the window.
 */
/** The service's `slowStart` policy; a `window` of 0 turns slow start off. */
export type SlowStartConfig = ServicePolicy['slowStart'];

/** For pools built without a policy (tests of balancing alone). */
export const NO_SLOW_START: Readonly<SlowStartConfig> = Object.freeze({ window: 0, aggression: 1, minWeightPercent: 10 });

/** Share of its weight an instance gets `elapsedMs` into its window; 1 once the window is over. */
export function slowStartFactor(config: Readonly<SlowStartConfig>, elapsedMs: number): number {
  if (config.window <= 0 || elapsedMs >= config.window) return 1;
  const time = Math.max(elapsedMs, 1) / config.window;
  const ramp = config.aggression === 1 ? time : Math.pow(time, 1 / config.aggression);
  return Math.max(config.minWeightPercent / 100, ramp);
}
