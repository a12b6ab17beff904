import type { CatalogDelta } from './model';

/**
 * Where a proxy's catalog cache reads the registry's state. `local` reads the in-process
 * registry view (switchboard all); `http` calls a registry's /v1/switchboard API.
 */
export interface CatalogSource {
  /**
   * Everything that changed after `sinceRev`, as of a revision ≥ `minRev` when given
   * (the source waits briefly for it, so a proxy never applies a view older than a message).
   * `sinceRev` 0 asks for the whole catalog.
   */
  changes(sinceRev: number, minRev?: number): Promise<CatalogDelta>;
  close(): Promise<void>;
}
