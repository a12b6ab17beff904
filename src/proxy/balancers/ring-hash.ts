import type { Balancer, PickRequest } from './balancer';
import type { Upstream } from '../upstream';
import { murmur3, parseHashKey, requestKey, type HashKey } from './hash-key';
import { pickWeightedRandom } from './random';

/** Ring points per unit of the smallest weight (Ketama uses 160). */
const POINTS_PER_WEIGHT = 160;
/** Whatever the weights, the ring stays this small (memory, rebuild time). */
const MAX_POINTS = 160 * 1024;

/**
 * Consistent hashing on a ring (Ketama; Envoy's RING_HASH). Every upstream owns points on a
 * 32-bit circle, as many as its weight asks; a request's key hashes to a spot and goes to the
 * owner of the next point clockwise that is available. Removing an instance moves only the
 * keys it owned; adding one takes keys only from its new neighbours. An unavailable owner is
 * skipped rather than removed, so a key comes back to its instance when the instance does.
 * Points are placed by instance id, so a restart on a new port keeps its keys.
 *
 * The ring uses registry weights, not slow-start weights: reshaping the ring as an instance
 * warms up would move keys around for nothing.
 */
export class RingHash implements Balancer {
  readonly policy = 'ring-hash';
  private readonly key: HashKey;
  private members: readonly Upstream[] = [];
  private points = new Uint32Array(0);
  private owners: Upstream[] = [];

  constructor(
    hashKey = 'ip',
    private readonly random: () => number = Math.random,
  ) {
    this.key = parseHashKey(hashKey);
  }

  update(upstreams: readonly Upstream[]): void {
    this.members = upstreams;
    const ring: Array<{ hash: number; owner: Upstream; order: number }> = [];
    const scale = pointScale(upstreams);
    upstreams.forEach((owner, order) => {
      const count = Math.max(1, Math.round(owner.baseWeight * scale));
      for (let i = 0; i < count; i++) ring.push({ hash: murmur3(`${owner.id}#${i}`), owner, order });
    });
    // Ties (rare) are broken by id so that every proxy builds the same ring.
    ring.sort((a, b) => a.hash - b.hash || (a.owner.id < b.owner.id ? -1 : a.owner.id > b.owner.id ? 1 : a.order - b.order));
    this.points = Uint32Array.from(ring, (p) => p.hash);
    this.owners = ring.map((p) => p.owner);
  }

  pick(upstreams: readonly Upstream[], request: PickRequest, exclude?: readonly Upstream[]): Upstream | undefined {
    if (upstreams !== this.members) this.update(upstreams);
    const key = requestKey(this.key, request);
    // No key to hash (Envoy does the same): any available upstream will do.
    if (key === undefined) return pickWeightedRandom(upstreams, this.random(), exclude);
    return this.ownerOf(murmur3(key), exclude);
  }

  /** The first available owner clockwise from `hash`. */
  ownerOf(hash: number, exclude?: readonly Upstream[]): Upstream | undefined {
    const points = this.points;
    const size = points.length;
    let index = lowerBound(points, hash);
    for (let step = 0; step < size; step++, index++) {
      if (index === size) index = 0;
      const owner = this.owners[index];
      if (owner.available() && (exclude === undefined || !exclude.includes(owner))) return owner;
    }
    return undefined;
  }
}

/** Points per unit of weight: POINTS_PER_WEIGHT for the lightest upstream, capped in total. */
function pointScale(upstreams: readonly Upstream[]): number {
  let lightest = Infinity;
  let total = 0;
  for (const u of upstreams) {
    if (u.baseWeight <= 0) continue;
    lightest = Math.min(lightest, u.baseWeight);
    total += u.baseWeight;
  }
  if (total === 0) return 0;
  return Math.min(POINTS_PER_WEIGHT / lightest, MAX_POINTS / total);
}

/** Index of the first point >= hash (points.length when there is none: wrap to 0). */
function lowerBound(points: Uint32Array, hash: number): number {
  let low = 0;
  let high = points.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (points[mid] < hash) low = mid + 1;
    else high = mid;
  }
  return low;
}
