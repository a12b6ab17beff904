import { DEFAULT_WEIGHTS, type Check, type Instance, type Weights } from './model';

/**
 * What instances have alike, held once per process instead of once per instance. At 100,000
 * instances each empty array or object costs ~4 MB; names repeat too — a service's name in
 * each of its instances, a host's address in each instance on it, the same tags and meta
 * values ("v2", "eu-west-1a") across a service — and JSON.parse shares only strings of ten
 * characters or fewer. Records are frozen once decoded, so sharing their parts is safe.
 */

const NO_TAGS: string[] = Object.freeze([]) as unknown as string[];
const NO_CHECKS: Check[] = Object.freeze([]) as unknown as Check[];
const NO_META: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * Strings shared so far. Bounded, because registrations choose them: a flood of distinct
 * values empties the table and sharing starts over (strings shared before stay shared).
 */
const MAX_SHARED_STRINGS = 65_536;
/** Longer strings are rarely repeated, and each would pin its bytes in the table. */
const MAX_SHARED_LENGTH = 256;
const strings = new Map<string, string>();

/**
 * The one copy of `value` this process holds, when it is short enough to share. Anything else
 * comes back as it is: the registry's decoder checks a stored record's shape, not every tag.
 */
export function sharedString(value: string): string {
  if (typeof value !== 'string' || value.length > MAX_SHARED_LENGTH) return value;
  const known = strings.get(value);
  if (known !== undefined) return known;
  if (strings.size >= MAX_SHARED_STRINGS) strings.clear();
  strings.set(value, value);
  return value;
}

/** How many strings the table holds (never more than MAX_SHARED_STRINGS). */
export function sharedStringCount(): number {
  return strings.size;
}

/**
 * `instance` with its common parts replaced by the shared ones (in place: the caller has just
 * decoded it and nobody else holds it yet). Ids stay as they are: each is unique.
 */
export function shareParts(instance: Instance): Instance {
  instance.service = sharedString(instance.service);
  instance.address = sharedString(instance.address);
  instance.tags = sharedTags(instance.tags);
  instance.meta = sharedMeta(instance.meta);
  instance.weights = sharedWeights(instance.weights);
  if (instance.checks.length === 0) instance.checks = NO_CHECKS;
  return instance;
}

function sharedTags(tags: string[]): string[] {
  if (tags.length === 0) return NO_TAGS;
  for (let i = 0; i < tags.length; i++) tags[i] = sharedString(tags[i]);
  return tags;
}

function sharedMeta(meta: Record<string, string>): Record<string, string> {
  let empty = true;
  for (const key of Object.keys(meta)) {
    empty = false;
    meta[key] = sharedString(meta[key]);
  }
  return empty ? NO_META : meta;
}

function sharedWeights(weights: Weights): Weights {
  return weights.passing === DEFAULT_WEIGHTS.passing && weights.warning === DEFAULT_WEIGHTS.warning ? DEFAULT_WEIGHTS : weights;
}
