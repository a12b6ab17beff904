import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { SwitchboardError } from '../../errors';
import type { Logger } from '../../log';

export const LOCK_FILE = 'LOCK';

/** Held while a process owns a data dir; `release()` removes the lock file if it is still ours. */
export interface DataDirLock {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * Take the data dir's lock file so two processes never append to one journal.
 *
 * The lock file is created exclusively and already holds our pid when it appears: we write a
 * private temp file and `link()` it to `LOCK`, which fails with EEXIST like an O_EXCL create
 * but never exposes an empty lock file to a concurrent reader. A lock whose pid is dead (the
 * owner was killed with -9) is stale and taken over.
 */
export async function acquireDataDirLock(dataDir: string, logger?: Logger): Promise<DataDirLock> {
  const lockPath = path.join(dataDir, LOCK_FILE);
  // Two tries: the second follows the removal of a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await createLockFile(lockPath)) return { path: lockPath, release: () => releaseLock(lockPath) };
    const owner = await readOwner(lockPath);
    if (owner === undefined) continue; // vanished between our create and read: try again
    if (owner !== null && isAlive(owner)) {
      throw new SwitchboardError('data_dir_locked', `data dir ${dataDir} is in use by pid ${owner}`);
    }
    logger?.warn({ lockPath, stalePid: owner }, 'taking over stale data dir lock');
    await removeIfOwnedBy(lockPath, owner);
  }
  throw new SwitchboardError('data_dir_locked', `data dir ${dataDir} is in use (lock file ${lockPath} keeps reappearing)`);
}

/** True when we created the lock; false when one already exists. */
async function createLockFile(lockPath: string): Promise<boolean> {
  const tmp = `${lockPath}.${process.pid}.${randomUUID()}.tmp`;
  const handle = await fs.open(tmp, 'w');
  try {
    await handle.writeFile(`${process.pid}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.link(tmp, lockPath);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** The pid in the lock file; null when unreadable as a pid; undefined when the file is gone. */
async function readOwner(lockPath: string): Promise<number | null | undefined> {
  let text: string;
  try {
    text = await fs.readFile(lockPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove the lock only if it still names `owner`. A narrow race remains when two processes
 * take over the same stale lock at once; the loser then fails its exclusive create and reports
 * the winner as the owner.
 */
async function removeIfOwnedBy(lockPath: string, owner: number | null): Promise<void> {
  if ((await readOwner(lockPath)) === owner) await fs.rm(lockPath, { force: true });
}

async function releaseLock(lockPath: string): Promise<void> {
  if ((await readOwner(lockPath)) === process.pid) await fs.rm(lockPath, { force: true });
}
