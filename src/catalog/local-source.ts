import type { CatalogDelta } from './model';
import type { CatalogSource } from './source';

/** Anything that can answer "what changed since": the registry's CatalogView in-process. */
export interface DeltaProvider {
  changes(sinceRev: number, minRev?: number): Promise<CatalogDelta>;
}

/**
 * A CatalogSource over the registry in the same process (`switchboard all`). The instances
 * it returns are the view's own frozen records: read them, never change them.
 */
export class LocalSource implements CatalogSource {
  constructor(private readonly provider: DeltaProvider) {}

  changes(sinceRev: number, minRev?: number): Promise<CatalogDelta> {
    return this.provider.changes(sinceRev, minRev);
  }

  async close(): Promise<void> {}
}
