/**
 * The cluster page's timeline: the last few hundred things that happened — registrations,
 * deregistrations, health flips, ejections, leader changes, proxy resyncs — newest last.
 * Bounded: the oldest go first.
 */
export interface UiEvent {
  /** Wall-clock ms. */
  at: number;
  kind: 'registered' | 'deregistered' | 'health' | 'ejected' | 'leader' | 'resync' | 'drained' | 'proxy';
  service?: string;
  instance?: string;
  detail: string;
}

const MAX_EVENTS = 300;

export class EventLog {
  private readonly events: UiEvent[] = [];
  private seq = 0;

  add(event: Omit<UiEvent, 'at'>, at = Date.now()): void {
    this.events.push({ ...event, at });
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
    this.seq++;
  }

  /** Grows with every event (the UI's stream says something changed). */
  get version(): number {
    return this.seq;
  }

  recent(limit = 100): UiEvent[] {
    return this.events.slice(-limit);
  }
}
