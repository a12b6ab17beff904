/** IPC messages between the harness (bench/backends.ts) and bench/backend-server.ts. */

export type BackendRequest =
  | { seq: number; op: 'open'; id: string; track: boolean }
  | { seq: number; op: 'close'; id: string }
  | { seq: number; op: 'arrivals'; ids: string[] }
  /** How an instance answers from now on: after `delayMs`, or (hang) never. */
  | { seq: number; op: 'behave'; id: string; hang: boolean; delayMs: number };

export interface BackendReply {
  seq: number;
  ready?: boolean;
  port?: number;
  arrivals?: Record<string, number[]>;
  error?: string;
}
