import type { Logger } from '../../log';
import type { AclStore } from '../acl/acl-store';
import type { TargetPolicy } from '../targets';
import type { ClientGuardConfig } from './client-guard';
import type { ConsulNode } from './consul-json';
import type { CatalogView } from '../catalog-view';
import type { CatalogWriter } from '../catalog-writer';
import type { KvWriter } from '../kv/kv-writer';
import type { EventLog } from '../ui/event-log';
import type { RuntimeView } from '../ui/runtime-view';
import type { Election } from '../election/election';

/** What every route needs: the view to read, the writer to write, who leads. */
export interface ApiContext {
  view: CatalogView;
  writer: CatalogWriter;
  /** Writes to the KV store (reads come from `view.kv`). */
  kvWriter: KvWriter;
  election: Election;
  logger: Logger;
  /** The catalog's node and datacenter, as Consul's shapes name them. */
  node: ConsulNode;
  /** Upper bound for `?wait=` (Consul caps at 10 min). */
  maxWaitMs: number;
  /** The proxy's Host suffix (`users.<domain>` routes to users): no one may claim another's. */
  domain: string;
  /** registry.minCheckInterval: the shortest check Interval accepted. */
  minCheckIntervalMs: number;
  /** registry.enableScriptChecks. */
  scriptChecks: boolean;
  /** Where registrations and checks may point. */
  targets: TargetPolicy;
  /** What a client must be to be served at all, and how long it has to send its request (client-guard.ts). */
  clients: ClientGuardConfig;
  /** False while the store is unreachable; undefined = always reachable. */
  storeHealthy?: () => boolean;
  /** ACL tokens and policies; undefined while acl.enabled is false. */
  acl?: AclStore;
  /** The web UI's runtime view (proxy reports) and timeline; the bus's state and the store's kind for its cluster page. */
  ui: { runtime: RuntimeView; events: EventLog; bus?: () => string; storeKind?: string };
  /** Aborted when the server closes, so parked blocking queries answer at once. */
  shutdown: AbortSignal;
}
