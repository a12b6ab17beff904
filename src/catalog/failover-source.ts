import { SwitchboardError, isSwitchboardError } from '../errors';
import type { Logger } from '../log';
import { HttpSource, type HttpSourceOptions } from './http-source';
import type { CatalogDelta } from './model';
import type { CatalogSource } from './source';

/**
 * A CatalogSource over several registries (`switchboard proxy --registry A,B,…`). It sticks
 * to the one that answered last and moves on to the next only when that one is unavailable
 * (unreachable, timing out, answering 5xx). Registries over one etcd share revisions, so a
 * proxy can ask any of them "what changed since N". An answer that is not about
 * availability (a 4xx) is the same everywhere: it is passed on, not retried elsewhere.
 * A registry that accepts but never answers costs one HttpSource timeout (2 s by default).
 */
export class FailoverSource implements CatalogSource {
  private current = 0;

  constructor(
    private readonly sources: readonly { name: string; source: CatalogSource }[],
    private readonly logger?: Logger,
  ) {
    if (sources.length === 0) throw new SwitchboardError('config_invalid', 'at least one registry URL is needed', { field: 'proxy.registry' });
  }

  /** One HttpSource per URL. */
  static overHttp(urls: readonly string[], logger?: Logger, options?: HttpSourceOptions): FailoverSource {
    return new FailoverSource(
      urls.map((url) => ({ name: url, source: new HttpSource(url, options) })),
      logger,
    );
  }

  /** Name of the registry the last answer came from (or the next one to ask). */
  get active(): string {
    return this.sources[this.current].name;
  }

  async changes(sinceRev: number, minRev?: number): Promise<CatalogDelta> {
    let lastError: unknown;
    for (let tried = 0; tried < this.sources.length; tried++) {
      const index = (this.current + tried) % this.sources.length;
      try {
        const delta = await this.sources[index].source.changes(sinceRev, minRev);
        this.settleOn(index);
        return delta;
      } catch (err) {
        if (!isSwitchboardError(err, 'store_unavailable')) throw err;
        lastError = err;
      }
    }
    throw lastError;
  }

  async close(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.source.close()));
  }

  private settleOn(index: number): void {
    if (index === this.current) return;
    this.logger?.warn({ from: this.sources[this.current].name, to: this.sources[index].name }, 'registry failover');
    this.current = index;
  }
}
