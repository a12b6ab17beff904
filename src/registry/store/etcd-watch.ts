import type { IEvent, IWatchResponse } from 'etcd3';
import type { Logger } from '../../log';
import { mapEtcdError, prefixRangeEnd, rangeStart, toNumber, type EtcdConnection } from './etcd-client';

/**
 * A resilient watch on one etcd key prefix, on etcd3's raw gRPC watch stream. etcd3's
 * high-level Watcher drops `compact_revision` and, on reconnect, resumes from the header
 * revision of its create response rather than from the last event it delivered, which can
 * skip a backlog; this one resumes from the revision after the last batch delivered.
 *
 * Known gap: a member cut off from the quorum keeps its watch streams open but silent
 * (etcd's Go client sends require-leader metadata, which etcd3's raw watch call cannot).
 * Readers that need bounded staleness check the revision by other means (the proxies'
 * anti-entropy check does).
 */
export interface RevisionListener {
  /** Every event of one revision, in revision order. */
  onRevision(rev: number, events: IEvent[]): void;
  /** etcd compacted history the watch still needed; the watch has stopped for good. */
  onCompacted(compactRev: number): void;
  /** The stream broke; the watch reconnects on its own. */
  onError(err: unknown): void;
}

type WatchStream = Awaited<ReturnType<EtcdConnection['client']['watchClient']['watch']>>;

const RECONNECT_BASE_MS = 100;
const RECONNECT_MAX_MS = 2000;

export class EtcdPrefixWatch {
  private stream?: WatchStream;
  private timer?: NodeJS.Timeout;
  private failures = 0;
  private closed = false;
  /** The first revision not yet delivered: where a reconnect starts. */
  private nextRev: number;

  constructor(
    private readonly conn: EtcdConnection,
    private readonly prefix: Buffer,
    afterRev: number,
    private readonly listener: RevisionListener,
    private readonly logger?: Logger,
  ) {
    this.nextRev = afterRev + 1;
    void this.connect();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    if (this.stream) discard(this.stream);
    this.stream = undefined;
  }

  private async connect(): Promise<void> {
    let stream: WatchStream;
    try {
      stream = await this.conn.client.watchClient.watch();
    } catch (err) {
      this.fail(undefined, err);
      return;
    }
    if (this.closed) {
      stream.on('error', () => undefined);
      discard(stream);
      return;
    }
    this.stream = stream;
    stream.on('data', (res: IWatchResponse) => this.onResponse(stream, res));
    stream.on('error', (err: Error) => this.fail(stream, err));
    stream.on('end', () => this.fail(stream, new Error('etcd watch stream ended')));
    stream.write({
      create_request: {
        key: rangeStart(this.prefix),
        range_end: prefixRangeEnd(this.prefix),
        start_revision: this.nextRev,
        prev_kv: true,
      },
    });
  }

  private onResponse(stream: WatchStream, res: IWatchResponse): void {
    if (this.closed || stream !== this.stream) return;
    if (res.canceled) return this.onCanceled(stream, res);
    if (res.created) {
      this.failures = 0;
      return;
    }
    // etcd never splits one revision across responses (without `fragment`), so grouping
    // within a response yields whole revisions.
    for (const [rev, events] of groupByRevision(res.events)) {
      this.nextRev = rev + 1;
      try {
        this.listener.onRevision(rev, events);
      } catch (err) {
        // Thrown inside a gRPC stream callback it would take the whole process down.
        this.logger?.error({ err, rev }, 'etcd watch listener threw');
      }
      if (this.closed) return;
    }
  }

  private onCanceled(stream: WatchStream, res: IWatchResponse): void {
    const compactRev = toNumber(res.compact_revision);
    if (compactRev > 0) {
      // Never retry the same revision: it is gone. The owner re-lists and watches anew.
      this.close();
      this.listener.onCompacted(compactRev);
      return;
    }
    this.fail(stream, new Error(`etcd cancelled the watch: ${res.cancel_reason || 'no reason given'}`));
  }

  private fail(stream: WatchStream | undefined, err: unknown): void {
    if (this.closed || stream !== this.stream) return;
    this.stream = undefined;
    if (stream) discard(stream);
    const delay = Math.min(RECONNECT_BASE_MS * 2 ** this.failures, RECONNECT_MAX_MS);
    this.failures++;
    this.logger?.debug({ err, nextRev: this.nextRev, delay }, 'etcd watch interrupted; reconnecting');
    this.listener.onError(mapEtcdError('watch', err));
    this.timer = setTimeout(() => void this.connect(), delay);
  }
}

/**
 * Half-close before cancelling: etcd3 resets every channel to an endpoint when a still
 * writable stream errors, and a cancel surfaces as an error, which would break the other
 * streams (watches, lease keepalives) sharing that connection.
 */
export function discard(stream: { end(): void; cancel(): void }): void {
  try {
    stream.end();
    stream.cancel();
  } catch {
    // already torn down
  }
}

function groupByRevision(events: IEvent[]): Map<number, IEvent[]> {
  const byRev = new Map<number, IEvent[]>();
  for (const ev of events) {
    const rev = toNumber(ev.kv.mod_revision);
    const group = byRev.get(rev);
    if (group) group.push(ev);
    else byRev.set(rev, [ev]);
  }
  return byRev;
}
