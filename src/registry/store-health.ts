import type { Logger } from '../log';
import { gauge } from '../metrics';
import { PUBLISHED_REV_KEY } from './keys';
import type { Store } from './store/store';

export interface StoreHealthOptions {
  store: Pick<Store, 'get'>;
  logger: Logger;
  /** Pause between probes. */
  intervalMs?: number;
  /** A probe still unanswered after this marks the store down (it may finish later). */
  timeoutMs?: number;
}

const storeUp = gauge('switchboard_registry_store_up', '1 while the store answers reads that need its quorum, else 0');

const DEFAULT_INTERVAL_MS = 1000;
const DEFAULT_TIMEOUT_MS = 2000;

/**
 * Is the store reachable right now? A registry serves reads from memory whatever the answer;
 * this tells readers (X-Consul-KnownLeader) and orchestrators (/readyz) when those reads may
 * be stale and writes will fail. The probe is one linearizable read: over etcd it needs a
 * quorum, which is exactly what writes need. A cluster without quorum keeps watch streams
 * open but silent, so the change feed alone cannot tell.
 */
export class StoreHealth {
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private up = true;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly options: StoreHealthOptions) {
    this.log = options.logger.child({ component: 'store-health' });
    this.intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    storeUp.set(1);
  }

  get healthy(): boolean {
    return this.up;
  }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.probe(), this.intervalMs);
  }

  private async probe(): Promise<void> {
    const slow = setTimeout(() => this.set(false, `no answer within ${this.timeoutMs} ms`), this.timeoutMs);
    try {
      await this.options.store.get(PUBLISHED_REV_KEY);
      this.set(true);
    } catch (err) {
      this.set(false, err instanceof Error ? err.message : String(err));
    } finally {
      clearTimeout(slow);
      this.schedule();
    }
  }

  /** Logs and exports edges only. */
  private set(up: boolean, reason?: string): void {
    if (this.stopped || up === this.up) return;
    this.up = up;
    storeUp.set(up ? 1 : 0);
    if (up) this.log.info('store reachable again');
    else this.log.warn({ reason }, 'store unreachable: writes answer 503, reads are served from memory');
  }
}
