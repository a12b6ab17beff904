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
 */

export const JOURNAL_FILE = 'journal';
export const SNAPSHOT_FILE = 'snapshot';

/** One committed txn: every op shares `rev`. */
export interface JournalRecord {
  rev: number;
  ops: TxnOp[];
}

export interface Snapshot {
  rev: number;
  kvs: KeyValue[];
}

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

export function encodeFrame(payload: JournalRecord | Snapshot): Buffer {
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
    readonly path: string,
    private readonly handle: FileHandle,
    private bytes: number,
  ) {}

  /** Read and validate the journal, cut a torn tail, then open it for appending. */
  static async open(dataDir: string, logger: Logger): Promise<{ journal: Journal; records: JournalRecord[] }> {
    const file = path.join(dataDir, JOURNAL_FILE);
    const scan = scanJournal(await readIfExists(file), file);
    if (scan.tornTail !== undefined) {
      logger.warn({ file, reason: scan.tornTail, keptBytes: scan.goodBytes }, 'dropping torn last journal record');
      await truncateFile(file, scan.goodBytes);
    }
    const handle = await fs.open(file, 'a');
    // A fresh journal's directory entry must be durable too, or fdatasync protects nothing.
    await fsyncDir(dataDir);
    return { journal: new Journal(file, handle, scan.goodBytes), records: scan.records };
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

  /** Empty the journal; only after a snapshot covering every record is durable. */
  async truncate(): Promise<void> {
    await this.handle.truncate(0);
    await this.handle.sync();
    this.bytes = 0;
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
  const frame = readFrame(buf, 0);
  if (!frame.ok) throw corrupt(file, 0, frame.reason);
  if (frame.end !== buf.length) throw corrupt(file, frame.end, 'trailing bytes after snapshot');
  const snap = frame.payload as Partial<Snapshot> | null;
  if (!snap || !Number.isSafeInteger(snap.rev) || !Array.isArray(snap.kvs)) throw corrupt(file, 0, 'not a snapshot');
  return snap as Snapshot;
}

/** Temp file, fsync, rename over the old snapshot, fsync the dir: the old or the new, never half. */
export async function writeSnapshot(dataDir: string, snapshot: Snapshot): Promise<void> {
  const file = path.join(dataDir, SNAPSHOT_FILE);
  const tmp = `${file}.tmp`;
  const handle = await fs.open(tmp, 'w');
  try {
    await handle.writeFile(encodeFrame(snapshot));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
  await fsyncDir(dataDir);
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
