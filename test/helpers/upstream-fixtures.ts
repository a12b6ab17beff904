/**
 * Instances for the proxy's balancer and pool unit tests: service `s` on 127.0.0.1:1.
 */
import { DEFAULT_WEIGHTS, type HealthStatus, type Instance, type Weights } from '../../src/catalog/model';
import type { TransportOptions } from '../../src/proxy/forward/transport';
import type { Upstream } from '../../src/proxy/upstream';

/** Connection settings for upstreams that unit tests never connect to. */
export const TRANSPORT: Readonly<TransportOptions> = Object.freeze({ connectMs: 1000, idleMs: 1000, bodyIdleMs: 1000 });

/**
 * `weight`: one number for both passing and warning (1 = the defaults), or the weights.
 * `status`: gives the instance one TTL check in that state; without it, no checks.
 */
export function instance(id: string, weight: number | Weights = 1, status?: HealthStatus): Instance {
  return {
    id,
    service: 's',
    address: '127.0.0.1',
    port: 1,
    tags: [],
    meta: {},
    weights: weightsOf(weight),
    checks: status === undefined ? [] : [{ checkId: `c-${id}`, name: 'c', type: 'ttl', status, output: '', statusSince: 0 }],
    createIndex: 1,
    modifyIndex: 1,
  };
}

function weightsOf(weight: number | Weights): Weights {
  if (typeof weight !== 'number') return { ...weight };
  return weight === 1 ? { ...DEFAULT_WEIGHTS } : { passing: weight, warning: weight };
}

/** Calls `onClose` each time the upstream's connections are closed (drained or destroyed). */
export function onConnectionsClosed(upstream: Upstream, onClose: () => void): void {
  const connections = upstream.connections;
  const close = connections.close.bind(connections);
  const destroy = connections.destroy.bind(connections);
  connections.close = () => {
    onClose();
    close();
  };
  connections.destroy = () => {
    onClose();
    destroy();
  };
}
