import type { ILeaseKeepAliveResponse } from 'etcd3';
import type { Logger } from '../../log';
import { toNumber, type EtcdConnection } from '../store/etcd-client';
import { discard } from '../store/etcd-watch';

type KeepAliveStream = Awaited<ReturnType<EtcdConnection['client']['leaseClient']['leaseKeepAlive']>>;

const REOPEN_DELAY_MS = 200;

/**
 * Keeps one etcd lease alive and says when we can no longer be sure it is.
 *
 * A keepalive acknowledged by etcd proves the lease lives until (time we sent it + TTL):
 * etcd renewed it no earlier than that send. When that horizon comes near without a newer
 * acknowledgement — etcd unreachable, no quorum, the lease revoked — the keeper reports the
 * lease lost, before another candidate could take over. etcd3's Lease class waits 2×TTL
 * before giving up, which would let two leaders overlap.
 */
export class LeaseKeeper {
  private stream?: KeepAliveStream;
  /** Send times of keepalives not yet answered on the current stream (answers come in order). */
  private sentAt: number[] = [];
  private aliveUntil: number;
  private readonly marginMs: number;
  private tickTimer?: NodeJS.Timeout;
  private expiryTimer?: NodeJS.Timeout;
  private reopenTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly conn: EtcdConnection,
    private readonly leaseId: string,
    private readonly ttlMs: number,
    private readonly onLost: (reason: string) => void,
    private readonly logger?: Logger,
    /** When the lease was requested: it lives at least until then + TTL. */
    grantedAt = Date.now(),
  ) {
    this.aliveUntil = grantedAt + ttlMs;
    this.marginMs = Math.min(500, ttlMs / 5);
    this.scheduleExpiry();
    this.tickTimer = setInterval(() => this.send(), Math.max(100, ttlMs / 3));
    void this.open();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.tickTimer);
    clearTimeout(this.expiryTimer);
    clearTimeout(this.reopenTimer);
    if (this.stream) discard(this.stream);
    this.stream = undefined;
  }

  private async open(): Promise<void> {
    let stream: KeepAliveStream;
    try {
      stream = await this.conn.client.leaseClient.leaseKeepAlive();
    } catch (err) {
      this.broken(undefined, err);
      return;
    }
    if (this.stopped) {
      stream.on('error', () => undefined);
      discard(stream);
      return;
    }
    this.stream = stream;
    this.sentAt = [];
    stream.on('data', (res: ILeaseKeepAliveResponse) => this.onAnswer(stream, res));
    stream.on('error', (err: Error) => this.broken(stream, err));
    stream.on('end', () => this.broken(stream, new Error('lease keepalive stream ended')));
    this.send();
  }

  private send(): void {
    if (this.stopped || !this.stream) return;
    this.sentAt.push(Date.now());
    this.stream.write({ ID: this.leaseId });
  }

  private onAnswer(stream: KeepAliveStream, res: ILeaseKeepAliveResponse): void {
    if (this.stopped || stream !== this.stream) return;
    const sent = this.sentAt.shift() ?? Date.now();
    const ttlSeconds = toNumber(res.TTL);
    if (ttlSeconds <= 0) return this.lose('lease expired or was revoked');
    this.aliveUntil = Math.max(this.aliveUntil, sent + ttlSeconds * 1000);
    this.scheduleExpiry();
  }

  /** The stream broke: open another (maybe to another member) while the lease still lives. */
  private broken(stream: KeepAliveStream | undefined, err: unknown): void {
    if (this.stopped || stream !== this.stream) return;
    this.stream = undefined;
    if (stream) discard(stream);
    this.logger?.debug({ err, leaseId: this.leaseId }, 'lease keepalive stream broke; reopening');
    this.reopenTimer = setTimeout(() => void this.open(), REOPEN_DELAY_MS);
  }

  private scheduleExpiry(): void {
    clearTimeout(this.expiryTimer);
    const wait = this.aliveUntil - this.marginMs - Date.now();
    this.expiryTimer = setTimeout(() => this.lose('no keepalive acknowledged within the lease TTL'), Math.max(0, wait));
  }

  private lose(reason: string): void {
    if (this.stopped) return;
    this.stop();
    this.onLost(reason);
  }
}
