/** IPC messages between the harness (bench/backends.ts) and bench/backend-server.ts. */

export type BackendRequest =
  | { seq: number; op: 'open'; id: string; track: boolean }
  | { seq: number; op: 'close'; id: string }
  | { seq: number; op: 'arrivals'; ids: string[] };

export interface BackendReply {
  seq: number;
  ready?: boolean;
  port?: number;
  arrivals?: Record<string, number[]>;
  error?: string;
}
