import type { Instance } from '../catalog/model';
import { INSTANCE_PREFIX } from './keys';
import type { KeyValue } from './store/store';

/**
 * How registry records are stored. Create/modify indexes are not stored: they are the
 * key's createRev/modRev, which the store assigns when the txn commits.
 */

export function encodeInstance(instance: Instance): string {
  const { createIndex: _c, modifyIndex: _m, ...rest } = instance;
  return JSON.stringify(rest);
}

/** The instance in `kv`, frozen (views share it with every reader), or undefined when unreadable. */
export function decodeInstance(kv: KeyValue): Instance | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(kv.value);
  } catch {
    return undefined;
  }
  if (!isInstanceShaped(parsed)) return undefined;
  // The key names the instance; trusting it keeps lookups by ID and the record in agreement.
  // The parsed object is ours alone: completed in place, not copied (a restart decodes 100,000).
  const instance = parsed;
  if (kv.key.startsWith(INSTANCE_PREFIX)) instance.id = kv.key.slice(INSTANCE_PREFIX.length);
  instance.createIndex = kv.createRev;
  instance.modifyIndex = kv.modRev;
  for (const check of instance.checks) Object.freeze(check);
  Object.freeze(instance.checks);
  Object.freeze(instance.tags);
  Object.freeze(instance.meta);
  Object.freeze(instance.weights);
  return Object.freeze(instance);
}

function isInstanceShaped(value: unknown): value is Instance {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.id === 'string' &&
    typeof v.service === 'string' &&
    typeof v.address === 'string' &&
    typeof v.port === 'number' &&
    Array.isArray(v.tags) &&
    typeof v.meta === 'object' &&
    v.meta !== null &&
    typeof v.weights === 'object' &&
    v.weights !== null &&
    Array.isArray(v.checks)
  );
}

/** A TTL check's wall-clock deadline (ms since the epoch). */
export function encodeDeadline(deadline: number): string {
  return JSON.stringify({ deadline });
}

export function decodeDeadline(value: string): number | undefined {
  try {
    const parsed = JSON.parse(value) as { deadline?: unknown };
    return typeof parsed.deadline === 'number' && Number.isFinite(parsed.deadline) ? parsed.deadline : undefined;
  } catch {
    return undefined;
  }
}
