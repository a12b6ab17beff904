import { promises as fs } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { SwitchboardError } from '../../errors';
import { type Logger, silentLogger } from '../../log';
import { acquireDataDirLock, type DataDirLock } from './data-dir-lock';
import { encodeFrame, Journal, JournalSyncError, type JournalRecord, readSnapshot, snapshotSize, writeSnapshot } from './journal';
import { KvState } from './kv-state';
import type { KeyValue, Store, TxnCompare, TxnOp, TxnResult, WatchListener, Watcher } from './store';

export interface EmbeddedStoreOptions {
  dataDir: string;
  /**
   * Journal records before a compaction (snapshot, then the journal it covers deleted); it
   * also waits for the journal to reach half the snapshot's size (see shouldCompact).
   */
  compactEvery?: number;
  logger?: Logger;
  /** Past revisions kept in memory for watchers that start behind. */
  historyLimit?: number;
  /**
   * The journal can no longer be trusted (a failed fdatasync): the store refuses writes from
   * then on; the role ends the process so the next start replays the journal.
   */
  onFatal?: (err: SwitchboardError) => void;
}

export const DEFAULT_COMPACT_EVERY = 10_000;

/**
 * Compaction also waits until the journal since the last snapshot is this share of the
 * snapshot's size: rewriting a large catalog after every 10,000 records made each write pay
 * O(catalog) over time; this way the snapshot bytes written stay within twice the journal
 * bytes written (amortised O(1) a write), and replay at restart stays bounded by half a snapshot.
 */
const COMPACT_JOURNAL_SHARE = 0.5;
interface Settle {
  resolve(result: TxnResult): void;
  reject(err: Error): void;
}

/** A txn waiting for its turn: a write to make durable, or a refused compare to report in order. */
type Pending = Settle & ({ kind: 'write'; rev: number; ops: TxnOp[]; frame: Buffer } | { kind: 'refused'; rev: number });

/**
 * The single-node durable store: KvState in memory, a journal on disk, a lock on the data dir.
 *
 * Commit path. `txn()` evaluates its compares at submission, in call order, against the
 * committed state overlaid with the writes still waiting for fsync (`staged`), and takes the
 * next revision. Writes queue up; one drain loop writes every queued record with a single
 * write + fdatasync (group commit: txns arriving during an fsync share the next one), and only
 * then applies them to KvState, which publishes them to readers and watchers, and resolves
 * the txns. So nobody ever observes a write that a crash could still lose. Refused txns
 * resolve in the same order, after the writes submitted before them, so a caller that retries
 * after `ok: false` sees what it lost against.
 *
 * A failed write or fsync leaves the journal's tail unknown (and Linux may have dropped the
 * dirty pages), so the store stops accepting txns until it is reopened, which re-reads the file.
 */
export class EmbeddedStore implements Store {
  readonly kind = 'embedded';
  private readonly dataDir: string;
  private readonly compactEvery: number;
  private readonly logger: Logger;
  private readonly state: KvState;
  private phase: 'new' | 'opening' | 'open' | 'closing' | 'closed' = 'new';
  private lock?: DataDirLock;
  private journal?: Journal;
  /** modRev of keys written by queued txns (0 = deleted), and which revision wrote it. */
  private readonly staged = new Map<string, { modRev: number; byRev: number }>();
  private queue: Pending[] = [];
  /** Highest revision handed out, durable or not. */
  private lastRev = 0;
  private recordsSinceSnapshot = 0;
  /** Journal bytes since the last snapshot (sealed segments included), and that snapshot's size. */
  private journalBytesSinceSnapshot = 0;
  private snapshotBytes = 0;
  /** The snapshot being written in the background, if one is. */
  private compaction: Promise<void> | undefined;
  private draining = false;
  private drained: Promise<void> = Promise.resolve();
  private failure?: SwitchboardError;
  /** When a write last found the disk full; undefined while writes go through. */
  private noSpaceSince?: number;
  private readonly onFatal: (err: SwitchboardError) => void;
  private closed?: Promise<void>;

  constructor(options: EmbeddedStoreOptions) {
    if (typeof options.dataDir !== 'string' || options.dataDir === '') {
      throw new SwitchboardError('config_invalid', 'dataDir: must be a non-empty path', { field: 'dataDir' });
    }
    const compactEvery = options.compactEvery ?? DEFAULT_COMPACT_EVERY;
    if (!Number.isSafeInteger(compactEvery) || compactEvery < 1) {
      throw new SwitchboardError('config_invalid', 'compactEvery: must be a positive integer', { field: 'compactEvery' });
    }
    this.dataDir = options.dataDir;
    this.compactEvery = compactEvery;
    this.logger = options.logger ?? silentLogger();
    this.state = new KvState(options.historyLimit);
    this.onFatal = options.onFatal ?? (() => undefined);
  }

  async open(): Promise<void> {
    if (this.phase !== 'new') throw new SwitchboardError('store_unavailable', `embedded store is already ${this.phase}`);
    this.phase = 'opening';
    try {
      await fs.mkdir(this.dataDir, { recursive: true });
      this.lock = await acquireDataDirLock(this.dataDir, this.logger);
      await this.load();
    } catch (err) {
      await this.releaseFiles();
      this.phase = 'closed';
      throw err;
    }
    this.phase = 'open';
    this.logger.info({ dataDir: this.dataDir, rev: this.state.rev, keys: this.state.size }, 'embedded store opened');
  }

  /** Waits for queued txns to become durable, then closes the journal and releases the lock. */
  close(): Promise<void> {
    if (this.phase !== 'open') return this.closed ?? Promise.resolve();
    this.phase = 'closing';
    this.closed = this.compactionSettled().then(async () => {
      await this.releaseFiles();
      this.state.closeWatchers();
      this.phase = 'closed';
    });
    return this.closed;
  }

  private async releaseFiles(): Promise<void> {
    await this.journal?.close();
    this.journal = undefined;
    await this.lock?.release();
    this.lock = undefined;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.assertReadable();
    return this.state.get(key);
  }

  async range(prefix: string): Promise<{ rev: number; kvs: KeyValue[] }> {
    this.assertReadable();
    return this.state.range(prefix);
  }

  txn(compares: TxnCompare[], ops: TxnOp[]): Promise<TxnResult> {
    return new Promise<TxnResult>((resolve, reject) => {
      // Synchronous up to the queue push: compares and revision are decided in call order.
      const refusal = this.writeRefusal() ?? invalidOps(ops);
      if (refusal) return reject(refusal);
      if (!this.comparesHold(compares)) {
        this.queue.push({ kind: 'refused', rev: this.lastRev, resolve, reject });
      } else {
        const rev = ++this.lastRev;
        const copy = ops.map((op): TxnOp => ({ ...op }));
        this.stage(rev, copy);
        this.queue.push({ kind: 'write', rev, ops: copy, frame: encodeFrame({ rev, ops: copy }), resolve, reject });
      }
      this.kick();
    });
  }

  watch(prefix: string, afterRev: number, listener: WatchListener): Watcher {
    this.assertReadable();
    return this.state.watch(prefix, afterRev, listener);
  }

  // ---- loading ----

  private async load(): Promise<void> {
    const snapshot = await readSnapshot(this.dataDir);
    if (snapshot) this.state.restore(snapshot.rev, snapshot.kvs);
    const { journal, records, sealedBytes } = await Journal.open(this.dataDir, this.logger);
    this.journal = journal;
    const replayed = this.replay(records, journal.path);
    this.recordsSinceSnapshot = replayed;
    this.journalBytesSinceSnapshot = sealedBytes + journal.size;
    this.snapshotBytes = await snapshotSize(this.dataDir);
    this.lastRev = this.state.rev;
  }

  /** Apply the journal records the snapshot does not already hold; returns how many. */
  private replay(records: JournalRecord[], file: string): number {
    let applied = 0;
    for (const record of records) {
      if (record.rev <= this.state.rev) continue; // already in the snapshot
      if (record.rev !== this.state.rev + 1) {
        throw new SwitchboardError(
          'journal_corrupt',
          `${file}: journal continues at revision ${record.rev} but the snapshot ends at ${this.state.rev}`,
        );
      }
      this.state.apply(record.rev, record.ops);
      applied++;
    }
    return applied;
  }

  // ---- commit path ----

  private comparesHold(compares: TxnCompare[]): boolean {
    return compares.every((c) => {
      const staged = this.staged.get(c.key);
      const current = staged ? staged.modRev : (this.state.get(c.key)?.modRev ?? 0);
      return current === c.modRev;
    });
  }

  private stage(rev: number, ops: TxnOp[]): void {
    for (const op of ops) this.staged.set(op.key, { modRev: op.kind === 'put' ? rev : 0, byRev: rev });
  }

  /** Forget staged entries that KvState now holds (a later queued write keeps its own). */
  private unstageThrough(rev: number): void {
    for (const [key, entry] of this.staged) if (entry.byRev <= rev) this.staged.delete(key);
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = true;
    this.drained = this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0);
        if (this.failure) {
          for (const p of batch) p.reject(this.failure);
          continue;
        }
        await this.commit(batch);
        if (this.shouldCompact()) await this.startCompaction();
      }
    } finally {
      // Cleared synchronously after the last emptiness check, so kick() never misses a txn.
      this.draining = false;
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    const frames = batch.flatMap((p) => (p.kind === 'write' ? [p.frame] : []));
    if (frames.length > 0) {
      try {
        await this.journal!.append(frames);
        for (const frame of frames) this.journalBytesSinceSnapshot += frame.length;
        this.spaceRecovered();
      } catch (err) {
        const refusal = this.writeFailed(err);
        for (const p of batch) p.reject(refusal);
        this.abandonQueued(refusal);
        return;
      }
    }
    for (const p of batch) {
      if (p.kind === 'refused') {
        p.resolve({ ok: false, rev: p.rev });
        continue;
      }
      this.applyDurable(p.rev, p.ops);
      this.recordsSinceSnapshot++;
      p.resolve({ ok: true, rev: p.rev });
    }
    this.unstageThrough(this.state.rev);
  }

  private applyDurable(rev: number, ops: TxnOp[]): void {
    try {
      this.state.apply(rev, ops);
    } catch (err) {
      // A watcher's onBatch threw while KvState delivered; the write itself is applied.
      this.logger.error({ err, rev }, 'watch listener failed');
    }
  }

  /**
   * A full disk (ENOSPC, EDQUOT) refuses this batch with 507 and leaves the store open: reads
   * go on, readiness says not ready, and the next write tries again, so the store recovers by
   * itself once space is freed. Any other failure — above all a failed fdatasync — is fatal:
   * acknowledging later writes on top of pages the kernel may have dropped would lose data,
   * so the process ends and the journal is replayed on the next start.
   */
  private writeFailed(err: unknown): SwitchboardError {
    const code = (err as NodeJS.ErrnoException).code;
    if (!(err instanceof JournalSyncError) && (code === 'ENOSPC' || code === 'EDQUOT')) {
      if (this.noSpaceSince === undefined) this.logger.error({ err, file: this.journal?.path }, 'disk full: writes are refused (507) until space is freed; reads go on');
      this.noSpaceSince ??= Date.now();
      return new SwitchboardError('insufficient_storage', `the store's disk is full (${code}); writes resume once space is freed`, { cause: err });
    }
    this.failWith(err);
    this.onFatal(this.failure as SwitchboardError);
    return this.failure as SwitchboardError;
  }

  private spaceRecovered(): void {
    if (this.noSpaceSince === undefined) return;
    this.logger.info({ fullForMs: Date.now() - this.noSpaceSince }, 'disk space is back: writes are accepted again');
    this.noSpaceSince = undefined;
  }

  /**
   * Nothing of a failed batch is in the journal, so its revisions are free again — and the
   * txns queued behind it were numbered and compared against it: they fail with it. The
   * journal stays contiguous, as replay requires.
   */
  private abandonQueued(refusal: SwitchboardError): void {
    for (const p of this.queue.splice(0)) p.reject(refusal);
    this.staged.clear();
    this.lastRev = this.state.rev;
  }

  /** Resolves once the queued writes are done and no snapshot is being written in the background. */
  async compactionSettled(): Promise<void> {
    await this.drained;
    while (this.compaction !== undefined) await this.compaction;
  }

  /** False while the disk is full (readiness): writes would be refused. */
  get writable(): boolean {
    return this.noSpaceSince === undefined && this.failure === undefined;
  }

  private failWith(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.failure = new SwitchboardError('store_unavailable', `journal write failed (${message}); reopen the store`, {
      cause: err,
    });
    this.logger.error({ err, file: this.journal?.path }, 'journal write failed; refusing further writes');
  }

  private shouldCompact(): boolean {
    return (
      this.compaction === undefined &&
      this.failure === undefined &&
      this.recordsSinceSnapshot >= this.compactEvery &&
      this.journalBytesSinceSnapshot >= this.snapshotBytes * COMPACT_JOURNAL_SHARE
    );
  }

  /**
   * Seal the journal at the committed revision, then write that revision's snapshot in the
   * background while new writes go to the new journal; once the snapshot is durable, delete
   * the sealed segments it covers. Sealing happens between batches, so the sealed segments
   * hold exactly the records up to the snapshot's revision. A crash at any point is harmless:
   * loading replays sealed segments and journal after whichever snapshot is on disk.
   */
  private async startCompaction(): Promise<void> {
    const rev = this.state.rev;
    // The records are immutable (a write replaces them): this array is the state at `rev`.
    const kvs = [...this.state.entries()];
    const journalBytes = this.journalBytesSinceSnapshot;
    try {
      await this.journal!.seal(rev);
    } catch (err) {
      // Nothing sealed: the journal goes on as it was. Another try after compactEvery records.
      this.recordsSinceSnapshot = 0;
      this.logger.error({ err, rev }, 'journal compaction failed to seal the journal; it keeps growing');
      return;
    }
    this.recordsSinceSnapshot = 0;
    this.journalBytesSinceSnapshot = 0;
    this.compaction = this.writeSnapshotOf(rev, kvs, journalBytes).finally(() => {
      this.compaction = undefined;
    });
  }

  private async writeSnapshotOf(rev: number, kvs: KeyValue[], journalBytes: number): Promise<void> {
    const started = performance.now();
    try {
      this.snapshotBytes = await writeSnapshot(this.dataDir, { rev, kvs });
      await this.journal?.dropSealedThrough(rev);
      this.logger.info({ rev, keys: kvs.length, journalBytes, snapshotBytes: this.snapshotBytes, ms: Math.round(performance.now() - started) }, 'journal compacted');
    } catch (err) {
      // The sealed segments stay and are replayed at the next start; the next compaction covers them too.
      this.journalBytesSinceSnapshot += journalBytes;
      this.logger.error({ err, rev }, 'journal compaction failed; the journal keeps growing');
    }
  }

  private writeRefusal(): SwitchboardError | undefined {
    if (this.failure) return this.failure;
    if (this.phase !== 'open') return new SwitchboardError('store_unavailable', `embedded store is ${this.phase}`);
    return undefined;
  }

  private assertReadable(): void {
    if (this.phase !== 'open' && this.phase !== 'closing') {
      throw new SwitchboardError('store_unavailable', `embedded store is ${this.phase}`);
    }
  }
}

/** Reject what the journal could not replay faithfully (JSON drops undefined values). */
function invalidOps(ops: TxnOp[]): SwitchboardError | undefined {
  for (const op of ops) {
    if (typeof op.key !== 'string' || (op.kind !== 'put' && op.kind !== 'delete')) {
      return new SwitchboardError('bad_request', 'txn op: needs kind put|delete and a string key');
    }
    if (op.kind === 'put' && typeof op.value !== 'string') {
      return new SwitchboardError('bad_request', `txn op: put of ${op.key} needs a string value`, { field: op.key });
    }
  }
  return undefined;
}
