import type { IncomingHttpHeaders } from 'node:http';
import { SwitchboardError } from '../../errors';
import type { Upstream } from '../upstream';
import { WeightedRoundRobin } from './weighted-round-robin';

/**
 * What a policy may look at to choose: an `http.IncomingMessage` satisfies it, so the proxy
 * passes the request itself and nothing is allocated per pick. Hash policies read a header,
 * a cookie or the client address; round robin ignores it.
 */
export interface PickRequest {
  readonly headers: IncomingHttpHeaders;
  readonly socket?: { readonly remoteAddress?: string } | null;
}

/**
 * One balancer per service pool. The pool calls `update` whenever its rotation changes
 * (members or weights) and passes the same array to every `pick` until the next `update`,
 * so a policy may keep per-position state. A policy asks an upstream only `available()`
 * and `weight`; it never looks at health internals.
 */
export interface Balancer {
  readonly policy: string;
  update(upstreams: readonly Upstream[]): void;
  /** undefined when no upstream is available. */
  pick(upstreams: readonly Upstream[], request: PickRequest): Upstream | undefined;
}

const POLICIES: Record<string, () => Balancer> = {
  'weighted-round-robin': () => new WeightedRoundRobin(),
};

export const DEFAULT_POLICY = 'weighted-round-robin';

export function balancerPolicies(): string[] {
  return Object.keys(POLICIES);
}

/** Unknown names fail here, at load time, never at request time. */
export function createBalancer(policy: string = DEFAULT_POLICY): Balancer {
  const make = Object.prototype.hasOwnProperty.call(POLICIES, policy) ? POLICIES[policy] : undefined;
  if (!make) {
    throw new SwitchboardError(
      'config_invalid',
      `unknown balancer policy "${policy}" (known: ${balancerPolicies().join(', ')})`,
      { field: 'policy' },
    );
  }
  return make();
}
