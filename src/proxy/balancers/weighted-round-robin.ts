import type { Balancer, PickRequest } from './balancer';
import type { Upstream } from '../upstream';

/**
 * Smooth weighted round robin, nginx's algorithm (ngx_http_upstream_get_peer): every pick
 * adds each available upstream's weight to its running score, takes the highest score
 * (first one on ties) and subtracts the total from it. Weights {5,1,1} give a a b a c a a:
 * the heavy upstream's turns are spread out instead of bunched.
 *
 * Weights are the Consul weights the catalog resolved for the instance's health
 * (`effectiveWeight`: Weights.Passing or Weights.Warning), scaled during slow start.
 */
export class WeightedRoundRobin implements Balancer {
  readonly policy = 'weighted-round-robin';
  private members: readonly Upstream[] = [];
  /** Running score per position of the array last given to `update`. */
  private scores: number[] = [];

  update(upstreams: readonly Upstream[]): void {
    // Keep the scores of upstreams that stay so a membership change does not reset
    // everybody's turn.
    const previous = new Map<Upstream, number>();
    this.members.forEach((u, i) => previous.set(u, this.scores[i]));
    this.scores = upstreams.map((u) => previous.get(u) ?? 0);
    this.members = upstreams;
  }

  pick(upstreams: readonly Upstream[], _request: PickRequest, exclude?: readonly Upstream[]): Upstream | undefined {
    if (upstreams !== this.members) this.update(upstreams);
    const scores = this.scores;
    let best = -1;
    let total = 0;
    for (let i = 0; i < upstreams.length; i++) {
      const u = upstreams[i];
      if (!u.available() || (exclude !== undefined && exclude.includes(u))) continue;
      const weight = u.weight;
      scores[i] += weight;
      total += weight;
      if (best < 0 || scores[i] > scores[best]) best = i;
    }
    if (best < 0) return undefined;
    scores[best] -= total;
    return upstreams[best];
  }
}
