import type { Balancer, PickRequest } from './balancer';
import type { Upstream } from '../upstream';

/** Weighted random: each available upstream with probability weight / total weight. */
export class RandomBalancer implements Balancer {
  readonly policy = 'random';

  constructor(private readonly random: () => number = Math.random) {}

  update(): void {}

  pick(upstreams: readonly Upstream[], _request: PickRequest, exclude?: readonly Upstream[]): Upstream | undefined {
    return pickWeightedRandom(upstreams, this.random(), exclude);
  }
}

/** `draw` in [0, 1) selects along the cumulative weights of the available upstreams. */
export function pickWeightedRandom(
  upstreams: readonly Upstream[],
  draw: number,
  exclude?: readonly Upstream[],
): Upstream | undefined {
  let total = 0;
  for (const u of upstreams) if (eligible(u, exclude)) total += u.weight;
  if (total <= 0) return undefined;
  let remaining = draw * total;
  let last: Upstream | undefined;
  for (const u of upstreams) {
    if (!eligible(u, exclude)) continue;
    remaining -= u.weight;
    if (remaining < 0) return u;
    last = u;
  }
  // Floating point: a draw at the very end of the range lands on the last one.
  return last;
}

function eligible(u: Upstream, exclude: readonly Upstream[] | undefined): boolean {
  return u.available() && (exclude === undefined || !exclude.includes(u));
}
