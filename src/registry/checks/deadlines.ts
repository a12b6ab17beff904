import type { Check, Instance } from '../../catalog/model';

/**
 * When health records are due for a change, in wall-clock ms. Shared by the TTL loop (to
 * know when to wake) and the writer (to re-check against fresh data before writing).
 */

/** When a TTL check lapses: its ttl/ key's deadline, or a full TTL after its last status change. */
export function ttlExpiry(check: Check, storedDeadline: number | undefined): number | undefined {
  if (check.type !== 'ttl' || check.ttlMs === undefined) return undefined;
  return storedDeadline ?? check.statusSince + check.ttlMs;
}

/** A TTL check that can still lapse (a critical one has nothing left to expire). */
export function canExpire(check: Check): boolean {
  return check.type === 'ttl' && check.status !== 'critical';
}

/** When the instance is to be deregistered (DeregisterCriticalServiceAfter), if ever. */
export function reapTime(instance: Instance): number | undefined {
  let earliest: number | undefined;
  for (const check of instance.checks) {
    if (check.status !== 'critical' || check.deregisterCriticalAfterMs === undefined) continue;
    const at = check.statusSince + check.deregisterCriticalAfterMs;
    if (earliest === undefined || at < earliest) earliest = at;
  }
  return earliest;
}

/** Reads a TTL check's stored deadline (the view's ttl/ keys). */
export type StoredDeadline = (checkId: string) => number | undefined;

/** The instance's earliest health deadline: a TTL lapse or its reap time, if any. */
export function nextDeadline(instance: Instance, storedDeadline: StoredDeadline): number | undefined {
  let earliest = reapTime(instance);
  for (const check of instance.checks) {
    if (!canExpire(check)) continue;
    const at = ttlExpiry(check, storedDeadline(check.checkId));
    if (at !== undefined && (earliest === undefined || at < earliest)) earliest = at;
  }
  return earliest;
}

/** What is due for one instance at `now`: TTL checks to expire, and whether to reap it. */
export function dueAt(instance: Instance, storedDeadline: StoredDeadline, now: number): { expire: string[]; reap: boolean } {
  const expire: string[] = [];
  for (const check of instance.checks) {
    if (!canExpire(check)) continue;
    const at = ttlExpiry(check, storedDeadline(check.checkId));
    if (at !== undefined && at <= now) expire.push(check.checkId);
  }
  const reap = reapTime(instance);
  return { expire, reap: reap !== undefined && reap <= now };
}
