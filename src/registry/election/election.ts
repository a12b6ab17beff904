import type { TxnCompare } from '../store/store';

/**
 * Leader election plug point. Exactly one registry process leads: it expires TTL checks,
 * runs registry-side checks and publishes invalidations.
 */
export interface Election {
  /** Begin campaigning (returns once the candidacy is registered, not once elected). */
  start(): Promise<void>;
  isLeader(): boolean;
  /** API address (host:port) of the current leader, or '' when there is none right now. */
  leader(): string;
  /**
   * API addresses of every registry process campaigning (the leader first): Consul's members
   * and raft peers, as far as clients ask.
   */
  members(): string[];
  /**
   * Fencing token while leading: the candidacy key's create revision. Leader-only writes
   * compare it so a deposed leader's late write fails instead of clobbering.
   */
  token(): number;
  /**
   * Compares to add to a leader-only store write so that it fails once this process no longer
   * leads (its candidacy key is gone), even if it has not noticed yet. Keys are relative to
   * the store's prefix. Empty when there is nothing to fence (one process, always leading).
   */
  fence(): TxnCompare[];
  /** Called on every leadership edge of this process (gained / lost). */
  onChange(listener: (leading: boolean) => void): () => void;
  /** Resign and stop campaigning. */
  stop(): Promise<void>;
}
