import type { Logger } from '../../log';
import type { CatalogView } from '../catalog-view';
import type { CatalogWriter } from '../catalog-writer';
import type { Election } from '../election/election';

/** What every route needs: the view to read, the writer to write, who leads. */
export interface ApiContext {
  view: CatalogView;
  writer: CatalogWriter;
  election: Election;
  logger: Logger;
  /** Upper bound for `?wait=` (Consul caps at 10 min). */
  maxWaitMs: number;
  /** False while the store is unreachable; undefined = always reachable. */
  storeHealthy?: () => boolean;
  /** Aborted when the server closes, so parked blocking queries answer at once. */
  shutdown: AbortSignal;
}
