import type { Balancer, PickRequest } from './balancer';
import type { Upstream } from '../upstream';

/**
 * Least request with the power of two choices (Envoy's LEAST_REQUEST, Mitzenmacher): take
 * two distinct available upstreams at random and send to the one with fewer requests in
 * flight per unit of weight. Nearly as good as scanning for the least loaded, without herding
 * every proxy onto the same "least loaded" instance. Ties go to the first of the two.
 */
export class LeastRequest implements Balancer {
  readonly policy = 'least-request';

  constructor(private readonly random: () => number = Math.random) {}

  update(): void {}

  pick(upstreams: readonly Upstream[], _request: PickRequest, exclude?: readonly Upstream[]): Upstream | undefined {
    let count = 0;
    for (const u of upstreams) if (eligible(u, exclude)) count++;
    if (count === 0) return undefined;
    if (count === 1) return nthEligible(upstreams, 0, exclude);
    const first = Math.floor(this.random() * count);
    let second = Math.floor(this.random() * (count - 1));
    if (second >= first) second++;
    const a = nthEligible(upstreams, first, exclude) as Upstream;
    const b = nthEligible(upstreams, second, exclude) as Upstream;
    return load(b) < load(a) ? b : a;
  }
}

/** Requests in flight per unit of weight; +1 so that weight still matters when both are idle. */
function load(u: Upstream): number {
  return (u.inFlight + 1) / u.weight;
}

function eligible(u: Upstream, exclude: readonly Upstream[] | undefined): boolean {
  return u.available() && (exclude === undefined || !exclude.includes(u));
}

function nthEligible(upstreams: readonly Upstream[], n: number, exclude: readonly Upstream[] | undefined): Upstream | undefined {
  for (const u of upstreams) {
    if (!eligible(u, exclude)) continue;
    if (n === 0) return u;
    n--;
  }
  return undefined;
}
