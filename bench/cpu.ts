/**
 * CPU time and memory of a process tree, straight from /proc (Linux only). A peer is often more
 * than one process (nginx master + worker, node cluster workers), so every reading covers the
 * process and all of its descendants.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let ticksPerSecond: number | undefined;

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on practically every Linux). */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Fields of /proc/<pid>/stat after the `(comm)` field, which may itself contain spaces. */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // the process is gone
  }
}

/** pid → parent pid for every process we can see. */
function parentMap(): Map<number, number> {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields) parents.set(Number(entry), Number(fields[1]));
  }
  return parents;
}

/** `pid` and all of its descendants that are alive now. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const [child, parent] of parentMap()) {
    const list = children.get(parent) ?? [];
    list.push(child);
    children.set(parent, list);
  }
  const tree: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift() as number;
    tree.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return tree;
}

/** utime + stime of one process (all its threads), in seconds. */
function processCpuSeconds(pid: number): number {
  const fields = statFields(pid);
  if (!fields) return 0;
  // After `(comm)`: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
  return (Number(fields[11]) + Number(fields[12])) / clockTicks();
}

/** CPU-seconds used so far by `pid` and its descendants. */
export function treeCpuSeconds(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + processCpuSeconds(p), 0);
}

/** Resident set size of one process in bytes (VmRSS), 0 if it is gone. */
function processRssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** RSS of `pid` and its descendants, in bytes. */
export function treeRssBytes(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + processRssBytes(p), 0);
}

/**
 * Samples a tree's RSS on a timer and keeps the peak: enough to show whether memory stays
 * flat while 1 MiB bodies stream through.
 */
export class RssSampler {
  private peak = 0;
  private timer?: NodeJS.Timeout;
  private readonly tree: number[];

  constructor(
    pid: number,
    private readonly everyMs = 50,
  ) {
    // The tree is fixed for the sample run; scanning /proc each tick would cost more than it measures.
    this.tree = processTree(pid);
  }

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    return this;
  }

  /** Stops sampling; returns the peak in bytes. */
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }

  private sample(): void {
    const rss = this.tree.reduce((sum, p) => sum + processRssBytes(p), 0);
    if (rss > this.peak) this.peak = rss;
  }
}
