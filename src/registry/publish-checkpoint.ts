import type { Logger } from '../log';
import type { Election } from './election/election';
import { PUBLISHED_REV_KEY } from './keys';
import type { Store } from './store/store';

export interface PublishCheckpointOptions {
  store: Store;
  election: Pick<Election, 'fence'>;
  logger: Logger;
  /** Least time between two writes: under churn, one write covers many messages. */
  minIntervalMs?: number;
  /** Load the mark but never write it (see PublisherOptions.persistRevision). */
  readOnly?: boolean;
}

const DEFAULT_MIN_INTERVAL_MS = 100;

/**
 * Where the leader's publisher stands, kept in the store (`meta/published-rev`) so that the
 * next leader resumes from there instead of from "now". Writes carry the election's fence:
 * a deposed leader's late write fails instead of moving the mark.
 *
 * The mark may lag what was published (writes are coalesced, and a leader can die between
 * publishing and writing). That only makes the next leader publish a few messages again,
 * which subscribers ignore (their revision is already past them); it never skips one,
 * because a revision is written only after its message was handed to the bus.
 */
export class PublishCheckpoint {
  private readonly log: Logger;
  private readonly minIntervalMs: number;
  /** Highest revision known to be in the store. */
  private saved = 0;
  /** Highest revision asked to be saved. */
  private wanted = 0;
  private writing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private lastWriteAt = 0;
  private closed = false;
  private fencedOut = false;

  constructor(private readonly options: PublishCheckpointOptions) {
    this.log = options.logger.child({ component: 'publish-checkpoint' });
    this.minIntervalMs = options.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS;
  }

  /** The stored revision (0 when there is none) and the store's revision at that read. */
  async load(): Promise<{ stored: number; storeRev: number }> {
    const { rev, kvs } = await this.options.store.range(PUBLISHED_REV_KEY);
    const kv = kvs.find((k) => k.key === PUBLISHED_REV_KEY);
    const stored = kv ? decodeRevision(kv.value) : 0;
    this.saved = Math.max(this.saved, stored);
    this.wanted = Math.max(this.wanted, stored);
    return { stored, storeRev: rev };
  }

  /** Ask for `rev` to be stored; returns at once. One write at a time, coalesced. */
  save(rev: number): void {
    if (this.closed || this.options.readOnly || rev <= this.wanted) return;
    this.wanted = rev;
    this.schedule();
  }

  /** Writes what is still pending (once), then accepts nothing more. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing;
    if (this.wanted > this.saved) await this.write();
  }

  private schedule(): void {
    if (this.closed || this.writing || this.timer) return;
    const wait = Math.max(0, this.lastWriteAt + this.minIntervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.writing = this.write().finally(() => {
        this.writing = undefined;
        if (this.wanted > this.saved) this.schedule();
      });
    }, wait);
  }

  private async write(): Promise<void> {
    const rev = this.wanted;
    this.lastWriteAt = Date.now();
    try {
      const result = await this.options.store.txn(this.options.election.fence(), [
        { kind: 'put', key: PUBLISHED_REV_KEY, value: JSON.stringify({ rev }) },
      ]);
      if (result.ok) {
        this.saved = Math.max(this.saved, rev);
        this.fencedOut = false;
      } else {
        this.onFencedOut(rev);
      }
    } catch (err) {
      this.log.warn({ err, rev }, 'could not store the published revision; retrying');
    }
  }

  /** Another process leads now: our writes fail on purpose until the election tells us. */
  private onFencedOut(rev: number): void {
    if (!this.fencedOut) this.log.warn({ rev }, 'published revision not stored: this process no longer leads');
    this.fencedOut = true;
    // Stop retrying: the next leader owns the mark.
    this.wanted = this.saved;
  }
}

function decodeRevision(value: string): number {
  try {
    const rev = (JSON.parse(value) as { rev?: unknown }).rev;
    return typeof rev === 'number' && Number.isSafeInteger(rev) && rev > 0 ? rev : 0;
  } catch {
    return 0;
  }
}
