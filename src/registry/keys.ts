/**
 * The registry's key layout inside a Store. The etcd store puts its configured prefix in
 * front of these; the embedded store uses them as they are.
 */
export const INSTANCE_PREFIX = 'instances/';
/** Wall-clock TTL deadlines, one key per TTL check: heartbeats touch only these, never the instance. */
export const TTL_PREFIX = 'ttl/';
/** Leader bookkeeping: the last revision the publisher announced. */
export const PUBLISHED_REV_KEY = 'meta/published-rev';

export const instanceKey = (id: string): string => INSTANCE_PREFIX + id;
export const ttlKey = (checkId: string): string => TTL_PREFIX + checkId;
