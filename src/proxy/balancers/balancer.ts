import type { IncomingHttpHeaders } from 'node:http';
import { SwitchboardError } from '../../errors';
import type { Upstream } from '../upstream';
import { LeastRequest } from './least-request';
import { RandomBalancer } from './random';
import { RingHash } from './ring-hash';
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
 * (members or registry weights) and passes the same array to every `pick` until the next
 * `update`, so a policy may keep per-position state. A policy asks an upstream only
 * `available()`, `weight` and (least-request) `inFlight`; it never looks at health internals.
 */
export interface Balancer {
  readonly policy: string;
  update(upstreams: readonly Upstream[]): void;
  /**
   * undefined when no upstream is available. `exclude` (retries): upstreams not to pick, even
   * when available; undefined when all available ones are excluded.
   */
  pick(upstreams: readonly Upstream[], request: PickRequest, exclude?: readonly Upstream[]): Upstream | undefined;
}

export interface BalancerOptions {
  /** ring-hash: `header:<name>`, `cookie:<name>` or `ip` (the default). */
  hashKey?: string;
  /** [0, 1); injected so tests can pin random choices. */
  random?: () => number;
}

const POLICIES: Record<string, (options: BalancerOptions) => Balancer> = {
  'weighted-round-robin': () => new WeightedRoundRobin(),
  'least-request': (options) => new LeastRequest(options.random),
  'ring-hash': (options) => new RingHash(options.hashKey, options.random),
  random: (options) => new RandomBalancer(options.random),
};

export const DEFAULT_POLICY = 'weighted-round-robin';

export function balancerPolicies(): string[] {
  return Object.keys(POLICIES);
}

/** Unknown names fail here, at load time, never at request time. */
export function createBalancer(policy: string = DEFAULT_POLICY, options: BalancerOptions = {}): Balancer {
  const make = Object.prototype.hasOwnProperty.call(POLICIES, policy) ? POLICIES[policy] : undefined;
  if (!make) {
    throw new SwitchboardError(
      'config_invalid',
      `unknown balancer policy "${policy}" (known: ${balancerPolicies().join(', ')})`,
      { field: 'balancer' },
    );
  }
  return make(options);
}
