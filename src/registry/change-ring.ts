/**
 * Which services changed at which revision, for the last `capacity` catalog changes. It
 * answers "what changed after revision N" exactly, or says it cannot (N is older than what
 * it remembers), in which case the caller sends the whole catalog.
 */
export class ChangeRing {
  private readonly entries: { rev: number; services: readonly string[] }[] = [];
  /** Every change after this revision is in `entries`. */
  private floor: number;

  constructor(
    private readonly capacity: number,
    startRev: number,
  ) {
    this.floor = startRev;
  }

  record(rev: number, services: readonly string[]): void {
    this.entries.push({ rev, services });
    if (this.entries.length > this.capacity) {
      const dropped = this.entries.splice(0, this.entries.length - this.capacity);
      this.floor = dropped[dropped.length - 1].rev;
    }
  }

  /** Forget everything; changes after `rev` will be recorded again (store reset). */
  reset(rev: number): void {
    this.entries.length = 0;
    this.floor = rev;
  }

  /** Services changed in (sinceRev, now], or undefined when that history is gone. */
  changedSince(sinceRev: number): Set<string> | undefined {
    if (sinceRev < this.floor) return undefined;
    const services = new Set<string>();
    for (let i = this.entries.length - 1; i >= 0 && this.entries[i].rev > sinceRev; i--) {
      for (const s of this.entries[i].services) services.add(s);
    }
    return services;
  }
}
