import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { SwitchboardError } from '../../errors';
import type { Logger } from '../../log';
import type { KeyValue, TxnOp } from './store';

/**
 * The embedded store's files: an append-only journal of txn records and a snapshot that
 * compaction writes. Both use one framing:
 *
 *   [u32 BE payload length][u32 BE CRC-32 of payload][payload: UTF-8 JSON]
 *
 * so a torn or damaged frame is detected instead of being half-parsed.
 *
 * Compaction seals the journal (renames it `journal.<last revision>` and starts a new one),
 * writes a snapshot of that revision while new records go to the new journal, then deletes
 * the sealed segments the snapshot covers. Loading reads the snapshot, the sealed segments in
 * revision order, then the journal.
 */

export const JOURNAL_FILE = 'journal';
export const SNAPSHOT_FILE = 'snapshot';

/** A sealed segment's name: the journal's name and its last revision, zero-padded so names sort. */
const SEALED = /^journal\.(\d{16})$/;
function sealedName(lastRev: number): string {
  return `${JOURNAL_FILE}.${String(lastRev).padStart(16, '0')}`;
}

/** Sealed segments in revision order, with the last revision each holds. */
async function sealedSegments(dataDir: string): Promise<Array<{ file: string; lastRev: number }>> {
  const names = (await fs.readdir(dataDir)).filter((name) => SEALED.test(name)).sort();
  return names.map((name) => ({ file: path.join(dataDir, name), lastRev: Number(SEALED.exec(name)?.[1]) }));
}

/** One committed txn: every op shares `rev`. */
export interface JournalRecord {
  rev: number;
  ops: TxnOp[];
}

export interface Snapshot {
  rev: number;
  kvs: KeyValue[];
}

/**
 * A snapshot file is frames of `{rev, part, kvs}` (SNAPSHOT_CHUNK keys each, `part` counting
 * from 0), then `{rev, end: true, count}`: written a chunk at a time, so no one string holds
 * the catalog (V8 caps a string at ~512 MiB) and the event loop runs between chunks. The end
 * frame proves the file whole. One `{rev, kvs}` frame without `part` is the format before chunking.
 */
interface SnapshotChunk extends Snapshot {
  part: number;
}
interface SnapshotEnd {
  rev: number;
  end: true;
  count: number;
}
const SNAPSHOT_CHUNK = 1000;

const HEADER_BYTES = 8;
/** Payloads start with this (JSON.stringify keeps key order); used to find frames after damage. */
const PAYLOAD_START = Buffer.from('{"rev":');

// ---- CRC-32 (IEEE 802.3, as zlib): node:zlib only gained crc32 in Node 22. ----

const CRC_TABLE = buildCrcTable();

function buildCrcTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

export function crc32(buf: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < buf.length; i++) crc = CRC_TABLE[(crc ^ buf[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// ---- Framing ----

export function encodeFrame(payload: JournalRecord | Snapshot | SnapshotChunk | SnapshotEnd): Buffer {
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  const frame = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.writeUInt32BE(crc32(body), 4);
  body.copy(frame, HEADER_BYTES);
  return frame;
}

type FrameRead = { ok: true; payload: unknown; end: number } | { ok: false; reason: string };

function readFrame(buf: Buffer, offset: number): FrameRead {
  if (buf.length - offset < HEADER_BYTES) return { ok: false, reason: 'incomplete header' };
  const length = buf.readUInt32BE(offset);
  const end = offset + HEADER_BYTES + length;
  if (length === 0) return { ok: false, reason: 'empty frame' };
  if (end > buf.length) return { ok: false, reason: `frame of ${length} bytes runs past end of file` };
  const body = buf.subarray(offset + HEADER_BYTES, end);
  if (crc32(body) !== buf.readUInt32BE(offset + 4)) return { ok: false, reason: 'checksum mismatch' };
  try {
    return { ok: true, payload: JSON.parse(body.toString('utf8')), end };
  } catch {
    return { ok: false, reason: 'checksum matches but payload is not JSON' };
  }
}

/** Is there any intact frame starting after `offset`? Then the damage is not a torn tail. */
function intactFrameAfter(buf: Buffer, offset: number): boolean {
  for (let at = buf.indexOf(PAYLOAD_START, offset + 1); at !== -1; at = buf.indexOf(PAYLOAD_START, at + 1)) {
    const start = at - HEADER_BYTES;
    if (start > offset && readFrame(buf, start).ok) return true;
  }
  return false;
}

function corrupt(file: string, offset: number, reason: string): SwitchboardError {
  return new SwitchboardError('journal_corrupt', `${file}: corrupt record at byte offset ${offset}: ${reason}`);
}

function asRecord(payload: unknown): JournalRecord | undefined {
  const r = payload as Partial<JournalRecord> | null;
  return r && Number.isSafeInteger(r.rev) && (r.rev as number) > 0 && Array.isArray(r.ops) ? (r as JournalRecord) : undefined;
}

export interface JournalScan {
  records: JournalRecord[];
  /** Bytes up to the end of the last intact record. */
  goodBytes: number;
  /** Why the tail after `goodBytes` was dropped, when it was. */
  tornTail?: string;
}

/**
 * Parse a journal. Damage followed by nothing intact is a torn last write (a crash between
 * write and fsync): it was never acknowledged and is dropped. Damage with intact records after
 * it is corruption of acknowledged data: refuse rather than silently lose it. A write that was
 * torn by power loss with sectors persisted out of order lands in the second case, which needs
 * an operator: we never guess.
 */
export function scanJournal(buf: Buffer, file: string): JournalScan {
  const records: JournalRecord[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const frame = readFrame(buf, offset);
    if (!frame.ok) {
      if (intactFrameAfter(buf, offset)) throw corrupt(file, offset, frame.reason);
      return { records, goodBytes: offset, tornTail: `${frame.reason} at byte offset ${offset}` };
    }
    const record = asRecord(frame.payload);
    if (!record) throw corrupt(file, offset, 'not a journal record');
    const prev = records[records.length - 1];
    if (prev && record.rev !== prev.rev + 1) {
      throw corrupt(file, offset, `revision ${record.rev} follows ${prev.rev}`);
    }
    records.push(record);
    offset = frame.end;
  }
  return { records, goodBytes: offset };
}

/** The append side of the journal. Not concurrency-safe: the store calls it one batch at a time. */
/** fdatasync failed: what the journal holds since the last sync is not known to be on disk. */
export class JournalSyncError extends Error {
  constructor(cause: unknown) {
    super(`journal fdatasync failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'JournalSyncError';
  }
}

export class Journal {
  private constructor(
    private readonly dataDir: string,
    readonly path: string,
    private handle: FileHandle,
    private bytes: number,
  ) {}

  /**
   * Read and validate the sealed segments and the journal, cut a torn tail off the journal,
   * then open it for appending. `records` are every segment's, in revision order.
   */
  static async open(dataDir: string, logger: Logger): Promise<{ journal: Journal; records: JournalRecord[]; sealedBytes: number }> {
    const records: JournalRecord[] = [];
    let sealedBytes = 0;
    for (const { file } of await sealedSegments(dataDir)) {
      const buf = await fs.readFile(file);
      // A segment was synced whole before it was sealed: any damage in it is corruption.
      const scan = scanJournal(buf, file);
      if (scan.tornTail !== undefined) throw corrupt(file, scan.goodBytes, scan.tornTail);
      for (const record of scan.records) records.push(record);
      sealedBytes += buf.length;
    }
    const file = path.join(dataDir, JOURNAL_FILE);
    const scan = scanJournal(await readIfExists(file), file);
    if (scan.tornTail !== undefined) {
      logger.warn({ file, reason: scan.tornTail, keptBytes: scan.goodBytes }, 'dropping torn last journal record');
      await truncateFile(file, scan.goodBytes);
    }
    for (const record of scan.records) records.push(record);
    const handle = await fs.open(file, 'a');
    // A fresh journal's directory entry must be durable too, or fdatasync protects nothing.
    await fsyncDir(dataDir);
    return { journal: new Journal(dataDir, file, handle, scan.goodBytes), records, sealedBytes };
  }

  get size(): number {
    return this.bytes;
  }

  /**
   * Write the frames as one write and fdatasync: the group commit of one batch. A write that
   * fails (a full disk) leaves the journal as it was: what part of the batch did reach the
   * file is cut off again, so the next batch appends after the last good record. A failed
   * fdatasync is another matter: the kernel may have dropped the pages, so nothing written
   * since the last sync can be trusted — JournalSyncError, which the store treats as fatal.
   */
  async append(frames: Buffer[]): Promise<void> {
    const data = frames.length === 1 ? frames[0] : Buffer.concat(frames);
    let written = 0;
    try {
      while (written < data.length) {
        const { bytesWritten } = await this.handle.write(data, written, data.length - written);
        written += bytesWritten;
      }
    } catch (err) {
      if (written > 0) await this.handle.truncate(this.bytes);
      throw err;
    }
    try {
      await this.handle.datasync();
    } catch (err) {
      throw new JournalSyncError(err);
    }
    this.bytes += data.length;
  }

  /**
   * Seal what the journal holds (its last record is `lastRev`) and start an empty one. Every
   * append was synced, so the sealed file is whole; the directory is synced, so both names
   * survive a crash. Between batches only (the store's drain loop).
   */
  async seal(lastRev: number): Promise<void> {
    await this.handle.close();
    try {
      await fs.rename(this.path, path.join(this.dataDir, sealedName(lastRev)));
      this.bytes = 0;
    } finally {
      // Renamed or not, appends go on in a file named `journal`.
      this.handle = await fs.open(this.path, 'a');
    }
    await fsyncDir(this.dataDir);
  }

  /** Delete the sealed segments a durable snapshot of `rev` covers. */
  async dropSealedThrough(rev: number): Promise<void> {
    const covered = (await sealedSegments(this.dataDir)).filter((segment) => segment.lastRev <= rev);
    for (const { file } of covered) await fs.unlink(file);
    if (covered.length > 0) await fsyncDir(this.dataDir);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

// ---- Snapshot ----

export async function readSnapshot(dataDir: string): Promise<Snapshot | undefined> {
  const file = path.join(dataDir, SNAPSHOT_FILE);
  const buf = await readIfExists(file);
  if (buf.length === 0) return undefined;
  let rev: number | undefined;
  const kvs: KeyValue[] = [];
  for (let offset = 0; offset < buf.length; ) {
    const frame = readFrame(buf, offset);
    if (!frame.ok) throw corrupt(file, offset, frame.reason);
    const part = frame.payload as Partial<SnapshotChunk & SnapshotEnd> | null;
    if (!part || !Number.isSafeInteger(part.rev) || (rev !== undefined && part.rev !== rev)) throw corrupt(file, offset, 'not a snapshot');
    rev = part.rev as number;
    if (part.end === true) {
      if (frame.end !== buf.length) throw corrupt(file, frame.end, 'trailing bytes after snapshot');
      if (part.count !== kvs.length) throw corrupt(file, offset, `snapshot ends after ${kvs.length} of ${String(part.count)} keys`);
      return { rev, kvs };
    }
    if (!Array.isArray(part.kvs)) throw corrupt(file, offset, 'not a snapshot');
    for (const kv of part.kvs) kvs.push(kv);
    // The format before chunking: one frame, nothing after it.
    if (part.part === undefined) {
      if (offset !== 0 || frame.end !== buf.length) throw corrupt(file, offset, 'not a snapshot');
      return { rev, kvs };
    }
    offset = frame.end;
  }
  throw corrupt(file, buf.length, 'snapshot has no end frame (cut short)');
}

/**
 * Temp file, chunk by chunk, fsync, rename over the old snapshot, fsync the dir: the old or
 * the new, never half. Yields to the event loop between chunks. Returns the file's size.
 */
export async function writeSnapshot(dataDir: string, snapshot: Snapshot): Promise<number> {
  const file = path.join(dataDir, SNAPSHOT_FILE);
  const tmp = `${file}.tmp`;
  const { rev, kvs } = snapshot;
  const handle = await fs.open(tmp, 'w');
  let bytes = 0;
  try {
    for (let i = 0; i < kvs.length; i += SNAPSHOT_CHUNK) {
      const frame = encodeFrame({ rev, part: i / SNAPSHOT_CHUNK, kvs: kvs.slice(i, i + SNAPSHOT_CHUNK) });
      await handle.writeFile(frame);
      bytes += frame.length;
    }
    const end = encodeFrame({ rev, end: true, count: kvs.length });
    await handle.writeFile(end);
    bytes += end.length;
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
  await fsyncDir(dataDir);
  return bytes;
}

/** The snapshot file's size (0 when there is none): compaction waits for the journal to grow past a share of it. */
export async function snapshotSize(dataDir: string): Promise<number> {
  try {
    return (await fs.stat(path.join(dataDir, SNAPSHOT_FILE))).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

// ---- File helpers ----

async function readIfExists(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw err;
  }
}

async function truncateFile(file: string, length: number): Promise<void> {
  const handle = await fs.open(file, 'r+');
  try {
    await handle.truncate(length);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
