import type { Check, HealthStatus, Instance } from '../catalog/model';
import { SwitchboardError } from '../errors';
import type { CatalogView } from './catalog-view';
import type { Election } from './election/election';
import { canExpire, reapTime, ttlExpiry } from './checks/deadlines';
import { decodeDeadline, decodeInstance, encodeDeadline, encodeInstance } from './instance-codec';
import { instanceKey, ttlKey } from './keys';
import type { KeyValue, Store, TxnCompare, TxnOp } from './store/store';
import { guardStore } from './store/guard';

/** A check as registered: validated, defaults applied, no runtime state yet. */
export type CheckSpec = Omit<Check, 'status' | 'output' | 'statusSince'> & {
  /** Initial status; a new check without one starts critical (Consul). An `external` check takes it every time. */
  status?: HealthStatus;
  /** An `external` check's output, as its registrant reports it. */
  output?: string;
};

/** An instance as registered: the catalog fields without store indexes or check state. */
export type RegistrationSpec = Omit<Instance, 'checks' | 'createIndex' | 'modifyIndex'> & {
  checks: CheckSpec[];
  /** Drop checks of an earlier registration of this ID that this one doesn't list. */
  replaceExistingChecks: boolean;
};

export interface CatalogWriterOptions {
  store: Store;
  /** Finds which instance owns a check ID (heartbeats name only the check). */
  view: CatalogView;
  now?: () => number;
  /** Compare-and-swap attempts before giving up with `conflict`. */
  maxAttempts?: number;
  /**
   * Fences the leader-only writes (TTL expiry, reaping, check results). Without one they are
   * unfenced: one process, always leading.
   */
  election?: Pick<Election, 'fence'>;
}

/** A txn to try, or undefined when there is nothing to write. */
type Plan = { compares: TxnCompare[]; ops: TxnOp[] } | undefined;

const NO_FENCE: Pick<Election, 'fence'> = { fence: () => [] };

const TTL_EXPIRED_OUTPUT = 'TTL expired';

/**
 * Every catalog write, as a store txn guarded by the instance key's modRev: two registries
 * (or a heartbeat racing the TTL loop) touching one instance never lose an update; the loser
 * re-reads and tries again.
 *
 * The leader-only writes also carry the election's fence. A failed fence is not a conflict:
 * retrying cannot help (this process no longer leads), so it rejects with `not_leader` at once.
 */
export class CatalogWriter {
  private readonly store: Store;
  private readonly view: CatalogView;
  private readonly now: () => number;
  private readonly maxAttempts: number;
  private readonly election: Pick<Election, 'fence'>;

  constructor(options: CatalogWriterOptions) {
    this.store = options.store;
    this.view = options.view;
    this.now = options.now ?? Date.now;
    this.maxAttempts = options.maxAttempts ?? 16;
    this.election = options.election ?? NO_FENCE;
  }

  /** Register or update in place (same ID keeps its createIndex and its checks' state). */
  async register(spec: RegistrationSpec): Promise<number> {
    this.assertCheckIdsFree(spec);
    const rev = await this.commit(async () => {
      const kv = await this.read(instanceKey(spec.id));
      const prev = kv ? decodeInstance(kv) : undefined;
      const now = this.now();
      const checks = mergeChecks(spec, prev, now);
      const instance: Instance = { ...pickInstanceFields(spec), checks, ...(prev?.drained === true ? { drained: true } : {}), createIndex: 0, modifyIndex: 0 };
      const ops: TxnOp[] = [{ kind: 'put', key: instanceKey(spec.id), value: encodeInstance(instance) }];
      for (const check of spec.checks) {
        if (check.type === 'ttl' && check.ttlMs !== undefined) ops.push(putDeadline(check.checkId, now + check.ttlMs));
      }
      const keptIds = new Set(checks.map((c) => c.checkId));
      for (const old of prev?.checks ?? []) if (old.type === 'ttl' && !keptIds.has(old.checkId)) ops.push(deleteDeadline(old.checkId));
      return { compares: [{ key: instanceKey(spec.id), modRev: kv?.modRev ?? 0 }], ops };
    });
    return rev as number;
  }

  /** Drain (no new requests; in-flight ones finish) or undrain an instance. */
  async setDrained(instanceId: string, drained: boolean): Promise<number> {
    const rev = await this.commit(async () => {
      const kv = await this.read(instanceKey(instanceId));
      const instance = kv && decodeInstance(kv);
      if (!kv || !instance) throw new SwitchboardError('not_found', `unknown service ID "${instanceId}"`);
      const { drained: _was, ...rest } = instance;
      const next: Instance = drained ? { ...rest, drained: true } : rest;
      return { compares: [{ key: kv.key, modRev: kv.modRev }], ops: [putInstance(next)] };
    });
    return rev as number;
  }

  /**
   * Adds a check to a registered instance, or replaces the one with its ID (Consul's
   * /v1/agent/check/register): the instance's other fields and checks stay as they are.
   */
  async putCheck(instanceId: string, spec: CheckSpec): Promise<number> {
    const rev = await this.commit(async () => {
      const kv = await this.read(instanceKey(instanceId));
      const prev = kv && decodeInstance(kv);
      if (!kv || !prev) throw new SwitchboardError('not_found', `unknown service ID "${instanceId}"`, { field: 'ServiceID' });
      const registration: RegistrationSpec = { ...pickInstanceFields(prev), checks: [spec], replaceExistingChecks: false };
      this.assertCheckIdsFree(registration);
      const now = this.now();
      const checks = mergeChecks(registration, prev, now);
      const ops: TxnOp[] = [putInstance({ ...prev, checks })];
      if (spec.type === 'ttl' && spec.ttlMs !== undefined) ops.push(putDeadline(spec.checkId, now + spec.ttlMs));
      const replaced = prev.checks.find((c) => c.checkId === spec.checkId);
      if (replaced?.type === 'ttl' && spec.type !== 'ttl') ops.push(deleteDeadline(spec.checkId));
      return { compares: [{ key: kv.key, modRev: kv.modRev }], ops };
    });
    return rev as number;
  }

  /** Removes one check from its instance (/v1/agent/check/deregister/:id). */
  async removeCheck(checkId: string): Promise<number> {
    const rev = await this.commit(async () => {
      const { kv, instance, check } = await this.readCheck(checkId);
      const ops: TxnOp[] = [putInstance({ ...instance, checks: instance.checks.filter((c) => c.checkId !== checkId) })];
      if (check.type === 'ttl') ops.push(deleteDeadline(checkId));
      return { compares: [{ key: kv.key, modRev: kv.modRev }], ops };
    });
    return rev as number;
  }

  async deregister(id: string): Promise<number> {
    const rev = await this.commit(async () => {
      const kv = await this.read(instanceKey(id));
      if (!kv) throw new SwitchboardError('not_found', `unknown service ID "${id}"`);
      return { compares: [{ key: kv.key, modRev: kv.modRev }], ops: deleteInstanceOps(kv) };
    });
    return rev as number;
  }

  /**
   * A TTL heartbeat (pass/warn/fail/update): moves the check's deadline a full TTL ahead and,
   * only when status or output changed, rewrites the instance. Plain heartbeats touch only
   * the ttl/ key, so they are not catalog changes.
   */
  async updateCheck(checkId: string, status: HealthStatus, output: string): Promise<number> {
    const rev = await this.commit(async () => {
      const { kv, instance, check } = await this.readCheck(checkId);
      if (check.type !== 'ttl' || check.ttlMs === undefined) {
        throw new SwitchboardError('bad_request', `check "${checkId}" is not a TTL check`, { field: 'checkId' });
      }
      const now = this.now();
      const ops: TxnOp[] = [putDeadline(checkId, now + check.ttlMs)];
      if (check.status !== status || check.output !== output) {
        ops.push(putInstance(withCheck(instance, { ...check, status, output, statusSince: sinceFor(check, status, now) })));
      }
      return { compares: [{ key: kv.key, modRev: kv.modRev }], ops };
    });
    return rev as number;
  }

  /**
   * Check runner: the result of a registry-side HTTP/TCP check. Rewrites the instance only
   * when status or output differ from the stored check; undefined = nothing to write (the
   * check or its instance is gone, or nothing changed). TTL checks go through updateCheck.
   * Leader-only: rejects with `not_leader` once the fence fails.
   */
  async recordCheckResult(instanceId: string, checkId: string, status: HealthStatus, output: string): Promise<number | undefined> {
    return this.commitAsLeader(async () => {
      const kv = await this.read(instanceKey(instanceId));
      const instance = kv && decodeInstance(kv);
      const check = instance?.checks.find((c) => c.checkId === checkId);
      if (!kv || !instance || !check || check.type === 'ttl') return undefined;
      if (check.status === status && check.output === output) return undefined;
      const updated: Check = { ...check, status, output, statusSince: sinceFor(check, status, this.now()) };
      return { compares: [{ key: kv.key, modRev: kv.modRev }], ops: [putInstance(withCheck(instance, updated))] };
    });
  }

  /** TTL loop: mark the check critical if its deadline has passed. Undefined = nothing to do. Leader-only. */
  async expireCheck(instanceId: string, checkId: string): Promise<number | undefined> {
    return this.commitAsLeader(async () => {
      const [kv, deadlineKv] = await Promise.all([this.read(instanceKey(instanceId)), this.read(ttlKey(checkId))]);
      const instance = kv && decodeInstance(kv);
      const check = instance?.checks.find((c) => c.checkId === checkId);
      if (!kv || !instance || !check || !canExpire(check)) return undefined;
      const now = this.now();
      const deadline = ttlExpiry(check, deadlineKv && decodeDeadline(deadlineKv.value));
      if (deadline === undefined || deadline > now) return undefined;
      const expired: Check = { ...check, status: 'critical', output: TTL_EXPIRED_OUTPUT, statusSince: now };
      return {
        // The ttl/ compare makes a heartbeat that lands meanwhile win over the expiry.
        compares: [
          { key: kv.key, modRev: kv.modRev },
          { key: ttlKey(checkId), modRev: deadlineKv?.modRev ?? 0 },
        ],
        ops: [putInstance(withCheck(instance, expired))],
      };
    });
  }

  /** TTL loop: deregister the instance if a check has been critical past its DeregisterCriticalServiceAfter. Leader-only. */
  async reap(instanceId: string): Promise<number | undefined> {
    return this.commitAsLeader(async () => {
      const kv = await this.read(instanceKey(instanceId));
      const instance = kv && decodeInstance(kv);
      const due = instance && reapTime(instance);
      if (!kv || due === undefined || due > this.now()) return undefined;
      return { compares: [{ key: kv.key, modRev: kv.modRev }], ops: deleteInstanceOps(kv) };
    });
  }

  /** Check IDs are global (Consul's agent); one already used by another instance is a conflict. */
  /** The stored instance that owns `checkId`, and the check; not_found when there is none. */
  private async readCheck(checkId: string): Promise<{ kv: KeyValue; instance: Instance; check: Check }> {
    const ownerId = this.view.checkOwner(checkId);
    const kv = ownerId === undefined ? undefined : await this.read(instanceKey(ownerId));
    const instance = kv && decodeInstance(kv);
    const check = instance?.checks.find((c) => c.checkId === checkId);
    if (!kv || !instance || !check) throw new SwitchboardError('not_found', `unknown check ID "${checkId}"`);
    return { kv, instance, check };
  }

  private assertCheckIdsFree(spec: RegistrationSpec): void {
    for (const check of spec.checks) {
      const owner = this.view.checkOwner(check.checkId);
      if (owner !== undefined && owner !== spec.id) {
        throw new SwitchboardError('conflict', `check ID "${check.checkId}" belongs to service ID "${owner}"`, { field: 'CheckID' });
      }
    }
  }

  private async commit(plan: () => Promise<Plan>, fenced = false): Promise<number | undefined> {
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const next = await plan();
      if (!next) return undefined;
      const fence = fenced ? this.election.fence() : [];
      const result = await this.guard(() => this.store.txn([...next.compares, ...fence], next.ops));
      if (result.ok) return result.rev;
      // etcd answers "a compare failed" without saying which: ask the fence on its own.
      if (fence.length > 0 && !(await this.holds(fence))) {
        throw new SwitchboardError('not_leader', 'this registry no longer leads; the write was fenced off');
      }
    }
    throw new SwitchboardError('conflict', 'too many concurrent updates to this instance; retry');
  }

  /** A write only the leader may make: it carries the election's fence. */
  private commitAsLeader(plan: () => Promise<Plan>): Promise<number | undefined> {
    return this.commit(plan, true);
  }

  /** True when every compare holds right now (the same rule the store's txn applies). */
  private async holds(compares: TxnCompare[]): Promise<boolean> {
    const current = await Promise.all(compares.map((c) => this.read(c.key)));
    return compares.every((c, i) => (current[i]?.modRev ?? 0) === c.modRev);
  }

  private read(key: string): Promise<KeyValue | undefined> {
    return this.guard(() => this.store.get(key));
  }

  private guard<T>(call: () => Promise<T>): Promise<T> {
    return guardStore(call);
  }
}

function pickInstanceFields(spec: Omit<Instance, 'checks' | 'createIndex' | 'modifyIndex'>): Omit<Instance, 'checks' | 'createIndex' | 'modifyIndex'> {
  const { id, service, address, port, tags, meta, weights } = spec;
  return { id, service, address, port, tags, meta, weights };
}

/**
 * The checks of a (re-)registration. Like Consul, a check that already existed keeps its
 * status and output (re-registering must not flip a healthy instance to critical), and
 * without replace-existing-checks the old checks this registration doesn't list stay.
 */
function mergeChecks(spec: RegistrationSpec, prev: Instance | undefined, now: number): Check[] {
  const previous = new Map((prev?.checks ?? []).map((c) => [c.checkId, c]));
  const listed = spec.checks.map((s) => newCheck(s, previous.get(s.checkId), now));
  if (spec.replaceExistingChecks || !prev) return listed;
  const listedIds = new Set(spec.checks.map((s) => s.checkId));
  return [...listed, ...prev.checks.filter((c) => !listedIds.has(c.checkId))];
}

function newCheck(spec: CheckSpec, prev: Check | undefined, now: number): Check {
  const check: Check = {
    checkId: spec.checkId,
    name: spec.name,
    type: spec.type,
    status: prev?.status ?? spec.status ?? 'critical',
    output: prev?.output ?? '',
    statusSince: prev?.statusSince ?? now,
  };
  // A check whose status its registrant sets (catalog/register) takes the status it is given.
  if (spec.type === 'external' && spec.status !== undefined && spec.status !== check.status) {
    check.status = spec.status;
    check.statusSince = now;
  }
  if (spec.type === 'external' && spec.output !== undefined) check.output = spec.output;
  const optional = ['notes', 'ttlMs', 'intervalMs', 'timeoutMs', 'http', 'method', 'header', 'tcp', 'args', 'deregisterCriticalAfterMs'] as const;
  for (const key of optional) if (spec[key] !== undefined) Object.assign(check, { [key]: spec[key] });
  return check;
}

function sinceFor(check: Check, status: HealthStatus, now: number): number {
  return check.status === status ? check.statusSince : now;
}

function withCheck(instance: Instance, check: Check): Instance {
  return { ...instance, checks: instance.checks.map((c) => (c.checkId === check.checkId ? check : c)) };
}

function putInstance(instance: Instance): TxnOp {
  return { kind: 'put', key: instanceKey(instance.id), value: encodeInstance(instance) };
}

function putDeadline(checkId: string, deadline: number): TxnOp {
  return { kind: 'put', key: ttlKey(checkId), value: encodeDeadline(deadline) };
}

function deleteDeadline(checkId: string): TxnOp {
  return { kind: 'delete', key: ttlKey(checkId) };
}

function deleteInstanceOps(kv: KeyValue): TxnOp[] {
  const ops: TxnOp[] = [{ kind: 'delete', key: kv.key }];
  const instance = decodeInstance(kv);
  for (const check of instance?.checks ?? []) if (check.type === 'ttl') ops.push(deleteDeadline(check.checkId));
  return ops;
}
