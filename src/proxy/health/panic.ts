import type { Logger } from '../../log';
import { counter, gauge } from '../../metrics';

/** Envoy's healthy_panic_threshold default. */
export const DEFAULT_PANIC_THRESHOLD_PERCENT = 50;

/**
 * A pool is in panic when its healthy share is below the threshold: the balancer then spreads
 * over ALL instances, because sending everything to the few survivors would crush them too.
 * A threshold of 0 disables panic; an empty pool is never in panic (there is nothing to spread
 * over).
 */
export function inPanic(total: number, healthy: number, thresholdPercent = DEFAULT_PANIC_THRESHOLD_PERCENT): boolean {
  if (total <= 0 || thresholdPercent <= 0) return false;
  return healthy * 100 < thresholdPercent * total;
}

const panicGauge = gauge('switchboard_proxy_panic_mode', '1 while the service balances over all instances (panic).', ['service']);
const panicEntries = counter('switchboard_proxy_panic_entries_total', 'Times a service entered panic mode.', ['service']);

/**
 * The panic state of one service, for metrics and logs: call `update` whenever the pool's
 * health changes. Counts and logs entries (edges), not every evaluation.
 */
export class PanicMode {
  private active = false;

  constructor(
    readonly service: string,
    readonly thresholdPercent: number = DEFAULT_PANIC_THRESHOLD_PERCENT,
    private readonly logger?: Logger,
  ) {
    panicGauge.set({ service }, 0);
  }

  /** Re-evaluates and returns whether the pool is in panic now. */
  update(total: number, healthy: number): boolean {
    const panic = inPanic(total, healthy, this.thresholdPercent);
    if (panic === this.active) return panic;
    this.active = panic;
    panicGauge.set({ service: this.service }, panic ? 1 : 0);
    if (panic) {
      panicEntries.inc({ service: this.service });
      this.logger?.warn({ service: this.service, total, healthy, thresholdPercent: this.thresholdPercent }, 'panic mode: balancing over all instances');
    } else {
      this.logger?.info({ service: this.service, total, healthy }, 'panic mode over');
    }
    return panic;
  }

  get inPanic(): boolean {
    return this.active;
  }

  /** The service is gone: drop its gauge series so label sets stay bounded. */
  dispose(): void {
    panicGauge.remove({ service: this.service });
  }
}
