import type { IEvent } from 'etcd3';
import { SwitchboardError } from '../../errors';
import type { Logger } from '../../log';
import { EtcdConnection, isUnavailable, prefixRangeEnd, storeUnavailable, toNumber } from '../store/etcd-client';
import { EtcdPrefixWatch } from '../store/etcd-watch';
import type { TxnCompare } from '../store/store';
import type { Election } from './election';
import { LeaseKeeper } from './lease-keeper';

export interface EtcdElectionOptions {
  endpoints: string[];
  /** The store's key prefix; candidacy keys live under `<prefix>election/`. */
  prefix: string;
  /**
   * This process's API address (host:port), what /v1/status/leader reports. A function is
   * asked when campaigning: a registry learns its port only once it listens.
   */
  candidate: string | (() => string);
  /** Lease TTL: how long a dead leader can hold on before another takes over. */
  ttlSeconds?: number;
  logger?: Logger;
}

interface Candidacy {
  leaseId: string;
  key: string;
  createRev: number;
  keeper: LeaseKeeper;
}

const DEFAULT_TTL_SECONDS = 3;
const ELECTION_DIR = 'election/';
/** No key ever has mod revision -1: a compare that never holds, for a process that does not lead. */
const NEVER: TxnCompare = { key: ELECTION_DIR, modRev: -1 };
const RETRY_BASE_MS = 200;
const RETRY_MAX_MS = 2000;

/**
 * Leader election over etcd, the classic recipe: every candidate puts one key
 * `<prefix>election/<leaseId>` = its address, attached to its own lease; the key with the
 * lowest create revision leads, and that revision is the fencing token. When a leader dies
 * its lease expires (ttlSeconds), etcd deletes its key, and the next candidate leads.
 *
 * We only trust what the watch has shown us: our own key counts once the watch delivers
 * it, because by then every older key (a candidate ahead of us) has been delivered too.
 */
export class EtcdElection implements Election {
  private readonly conn: EtcdConnection;
  private readonly dir: Buffer;
  private readonly ttlSeconds: number;
  /** Candidacy keys as the watch has shown them: key → address and create revision. */
  private readonly candidates = new Map<string, { address: string; createRev: number }>();
  private readonly listeners = new Set<(leading: boolean) => void>();
  private watch?: EtcdPrefixWatch;
  private candidacy?: Candidacy;
  private leading = false;
  private stopped = false;
  private followTimer?: NodeJS.Timeout;
  private campaignTimer?: NodeJS.Timeout;
  private retries = 0;

  constructor(private readonly options: EtcdElectionOptions) {
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 1) {
      throw new SwitchboardError('config_invalid', 'election TTL must be a whole number of seconds ≥ 1', { field: 'election.ttlSeconds' });
    }
    if (typeof options.candidate === 'string') assertCandidate(options.candidate);
    this.conn = new EtcdConnection(options.endpoints);
    this.dir = Buffer.from(`${options.prefix}${ELECTION_DIR}`, 'utf8');
  }

  /** Rejects with store_unavailable (and stops) when etcd cannot be reached at all. */
  async start(): Promise<void> {
    try {
      await this.follow();
      await this.campaign();
    } catch (err) {
      await this.stop();
      throw isUnavailable(err) ? storeUnavailable('election start', err) : err;
    }
  }

  isLeader(): boolean {
    return this.leading;
  }

  leader(): string {
    return this.lowest()?.address ?? '';
  }

  members(): string[] {
    return [...this.candidates.values()].sort((a, b) => a.createRev - b.createRev).map((c) => c.address);
  }

  token(): number {
    return this.leading && this.candidacy ? this.candidacy.createRev : 0;
  }

  /**
   * Our candidacy key at its create revision (it is written once): deleted when our lease
   * ends, so a write carrying this compare fails once another candidate can lead.
   */
  fence(): TxnCompare[] {
    if (!this.leading || !this.candidacy) return [NEVER];
    return [{ key: this.candidacy.key.slice(this.options.prefix.length), modRev: this.candidacy.createRev }];
  }

  onChange(listener: (leading: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.followTimer);
    clearTimeout(this.campaignTimer);
    this.watch?.close();
    const candidacy = this.candidacy;
    this.candidacy = undefined;
    this.update();
    if (candidacy) await this.resign(candidacy);
    this.conn.close();
  }

  /** Read every candidacy, then watch for changes from just after that read. */
  private async follow(): Promise<void> {
    const res = await this.conn.call('election range', ({ deadline }) =>
      this.conn.client.kv.range({ key: this.dir, range_end: prefixRangeEnd(this.dir) }, { deadline }),
    );
    if (this.stopped) return;
    this.candidates.clear();
    for (const kv of res.kvs) {
      this.candidates.set(kv.key.toString('utf8'), { address: kv.value.toString('utf8'), createRev: toNumber(kv.create_revision) });
    }
    this.watch = new EtcdPrefixWatch(this.conn, this.dir, toNumber(res.header.revision), {
      onRevision: (_rev, events) => this.apply(events),
      onCompacted: () => this.refollow(),
      onError: (err) => this.options.logger?.debug({ err }, 'election watch interrupted'),
    }, this.options.logger);
    this.update();
  }

  /** History we needed is compacted: list again (retrying while etcd is unreachable). */
  private refollow(): void {
    if (this.stopped) return;
    this.follow().catch((err) => {
      this.options.logger?.warn({ err }, 'election: re-reading candidates failed; retrying');
      this.followTimer = setTimeout(() => this.refollow(), RETRY_MAX_MS);
    });
  }

  private apply(events: IEvent[]): void {
    for (const ev of events) {
      const key = ev.kv.key.toString('utf8');
      if (String(ev.type).toUpperCase() === 'DELETE') {
        this.candidates.delete(key);
        if (key === this.candidacy?.key) this.loseCandidacy('our candidacy key was deleted');
      } else {
        this.candidates.set(key, { address: ev.kv.value.toString('utf8'), createRev: toNumber(ev.kv.create_revision) });
      }
    }
    this.update();
  }

  /** Grant a lease and put our candidacy key on it; the keeper then keeps the lease alive. */
  private async campaign(): Promise<void> {
    const grantedAt = Date.now();
    const grant = await this.conn.call('lease grant', ({ deadline }) =>
      this.conn.client.leaseClient.leaseGrant({ TTL: this.ttlSeconds }, { deadline }),
    );
    const leaseId = grant.ID;
    const key = `${this.dir.toString('utf8')}${leaseId}`;
    try {
      const createRev = await this.putCandidacy(key, leaseId);
      if (this.stopped) throw new Error('election stopped while campaigning');
      const ttlMs = this.ttlSeconds * 1000;
      const keeper = new LeaseKeeper(this.conn, leaseId, ttlMs, (reason) => this.loseCandidacy(reason), this.options.logger, grantedAt);
      this.candidacy = { leaseId, key, createRev, keeper };
      this.retries = 0;
      this.options.logger?.info({ key, createRev }, 'election: candidacy registered');
      this.update();
    } catch (err) {
      void this.revoke(leaseId);
      throw err;
    }
  }

  /** Returns the key's create revision: our place in line and our fencing token. */
  private async putCandidacy(key: string, leaseId: string): Promise<number> {
    const keyBytes = Buffer.from(key, 'utf8');
    const candidate = this.candidateAddress();
    const res = await this.conn.call('election put', ({ deadline }) =>
      this.conn.client.kv.txn(
        {
          compare: [{ key: keyBytes, target: 'Create', result: 'Equal', create_revision: 0 }],
          success: [{ request_put: { key: keyBytes, value: Buffer.from(candidate, 'utf8'), lease: leaseId } }],
        },
        { deadline },
      ),
    );
    if (!res.succeeded) throw new Error(`candidacy key ${key} already exists`);
    return toNumber(res.header.revision);
  }

  /** Our lease (or key) is gone: step down at once, then campaign again with a new lease. */
  private loseCandidacy(reason: string): void {
    const lost = this.candidacy;
    if (!lost || this.stopped) return;
    this.options.logger?.warn({ reason, key: lost.key }, 'election: candidacy lost; stepping down');
    this.candidacy = undefined;
    lost.keeper.stop();
    void this.revoke(lost.leaseId);
    this.update();
    this.recampaign();
  }

  private candidateAddress(): string {
    const { candidate } = this.options;
    return assertCandidate(typeof candidate === 'string' ? candidate : candidate());
  }

  private recampaign(): void {
    if (this.stopped) return;
    const delay = this.retries === 0 ? 0 : Math.min(RETRY_BASE_MS * 2 ** (this.retries - 1), RETRY_MAX_MS);
    this.retries++;
    this.campaignTimer = setTimeout(() => {
      this.campaign().catch((err) => {
        this.options.logger?.warn({ err }, 'election: campaign failed; retrying');
        this.recampaign();
      });
    }, delay);
  }

  private async resign(candidacy: Candidacy): Promise<void> {
    candidacy.keeper.stop();
    await this.revoke(candidacy.leaseId);
  }

  /** Best effort: if etcd is unreachable the lease simply expires. */
  private async revoke(leaseId: string): Promise<void> {
    try {
      await this.conn.call('lease revoke', ({ deadline }) => this.conn.client.leaseClient.leaseRevoke({ ID: leaseId }, { deadline }));
    } catch (err) {
      this.options.logger?.debug({ err, leaseId }, 'election: lease revoke failed (it will expire)');
    }
  }

  private lowest(): { address: string; createRev: number; key: string } | undefined {
    let best: { address: string; createRev: number; key: string } | undefined;
    for (const [key, c] of this.candidates) if (!best || c.createRev < best.createRev) best = { key, ...c };
    return best;
  }

  /** Recompute leadership; tell listeners only on an edge. */
  private update(): void {
    const leading = !this.stopped && this.candidacy !== undefined && this.lowest()?.key === this.candidacy.key;
    if (leading === this.leading) return;
    this.leading = leading;
    this.options.logger?.info({ leading, token: this.token() }, leading ? 'election: leading' : 'election: not leading');
    for (const listener of this.listeners) {
      try {
        listener(leading);
      } catch (err) {
        this.options.logger?.error({ err }, 'election listener threw');
      }
    }
  }
}

function assertCandidate(address: string): string {
  if (!address) throw new SwitchboardError('config_invalid', 'election candidate address must not be empty', { field: 'api.listen' });
  return address;
}
