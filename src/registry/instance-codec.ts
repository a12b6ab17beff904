import { sharedInstance } from '../catalog/instance-shape';
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

/** The instance in `kv`, shared and frozen (views share it with every reader), or undefined when unreadable. */
export function decodeInstance(kv: KeyValue): Instance | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(kv.value);
  } catch {
    return undefined;
  }
  if (!isInstanceShaped(parsed)) return undefined;
  // The key names the instance; trusting it keeps lookups by ID and the record in agreement.
  const id = kv.key.startsWith(INSTANCE_PREFIX) ? kv.key.slice(INSTANCE_PREFIX.length) : parsed.id;
  // Field by field, not `{...parsed}` (a restart decodes 100,000: the spread was most of it)
  // nor completed in place (the added fields would go to a second, out-of-object store each):
  // one object of one shape, every field in it.
  const { service, address, port, tags, meta, weights, checks, drained } = parsed;
  const instance: Instance =
    drained === undefined
      ? { id, service, address, port, tags, meta, weights, checks, createIndex: kv.createRev, modifyIndex: kv.modRev }
      : { id, service, address, port, tags, meta, weights, checks, drained, createIndex: kv.createRev, modifyIndex: kv.modRev };
  return sharedInstance(instance);
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
