import type { ReloadReport, SwitchboardConfig } from '../config/types';
import type { ErrorCode } from '../errors';

/**
 * The IPC messages between the proxy's primary process and its cluster workers
 * (`switchboard proxy --workers N`). Every message carries `sb` so it is never mistaken for
 * node:cluster's own (`cmd: 'NODE_CLUSTER'`) or prom-client's.
 *
 *   primary → worker   start (once), ask, reload (a new configuration), stop
 *   worker → primary   listening, ready, failed (then exits 1), answer (to an ask)
 */

export type AskWhat = 'metrics' | 'catalog' | 'status';

export type ToWorker =
  | { sb: 'start'; worker: number; config: SwitchboardConfig; listenAfterSync: boolean }
  | { sb: 'ask'; id: number; what: AskWhat }
  /** Apply a reloaded configuration; answered with what was applied (ReloadReport). */
  | { sb: 'reload'; id: number; config: SwitchboardConfig }
  | { sb: 'stop' };

export type FromWorker =
  | { sb: 'listening'; address: string }
  | { sb: 'ready' }
  | { sb: 'failed'; code?: ErrorCode; message: string }
  | { sb: 'answer'; id: number; value?: unknown; error?: string };

/** What a worker answers to `reload`. */
export type { ReloadReport };

/** What a worker answers to `ask status` (the primary's GET /workers adds pid and state). */
export interface WorkerStatus {
  /** Requests this worker answered (its switchboard_proxy_requests_total). */
  requests: number;
  /** Catalog revision it routes on. */
  rev: number;
  ready: boolean;
}

function tagged(message: unknown): boolean {
  return typeof message === 'object' && message !== null && typeof (message as { sb?: unknown }).sb === 'string';
}

export function isFromWorker(message: unknown): message is FromWorker {
  return tagged(message);
}

export function isToWorker(message: unknown): message is ToWorker {
  return tagged(message);
}
