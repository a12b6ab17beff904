/**
 * Which services changed at which revision, for the last `capacity` catalog changes. It
 * answers "what changed after revision N" exactly, or says it cannot (N is older than what
 * it remembers), in which case the caller sends the whole catalog.
 *
 * A circular buffer: recording a change is O(1) however full the ring is.
 */
export class ChangeRing {
  private readonly entries: ({ rev: number; services: readonly string[] } | undefined)[];
  /** Slot the next change goes into. */
  private head = 0;
  private count = 0;
  /** Every change after this revision is in `entries`. */
  private floor: number;

  constructor(
    private readonly capacity: number,
    startRev: number,
  ) {
    this.capacity = Math.max(1, Math.floor(capacity));
    this.entries = new Array(this.capacity).fill(undefined);
    this.floor = startRev;
  }

  record(rev: number, services: readonly string[]): void {
    if (this.count === this.capacity) {
      // The oldest entry is overwritten: history now starts after its revision.
      this.floor = (this.entries[this.head] as { rev: number }).rev;
    } else {
      this.count++;
    }
    this.entries[this.head] = { rev, services };
    this.head = (this.head + 1) % this.capacity;
  }

  /** Forget everything; changes after `rev` will be recorded again (store reset). */
  reset(rev: number): void {
    this.entries.fill(undefined);
    this.head = 0;
    this.count = 0;
    this.floor = rev;
  }

  /** Services changed in (sinceRev, now], or undefined when that history is gone. */
  changedSince(sinceRev: number): Set<string> | undefined {
    if (sinceRev < this.floor) return undefined;
    const services = new Set<string>();
    for (let n = 0; n < this.count; n++) {
      const entry = this.entries[(this.head - 1 - n + 2 * this.capacity) % this.capacity];
      if (!entry || entry.rev <= sinceRev) break;
      for (const s of entry.services) services.add(s);
    }
    return services;
  }
}
