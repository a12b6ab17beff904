import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { SwitchboardError } from '../../errors';

/**
 * What a request that matches no route gets, honestly: a known path asked with the wrong
 * method is 405 with `Allow` (Consul's answer); a Consul endpoint this registry does not
 * implement is 501 `not_implemented` (a client learns it must look elsewhere, instead of
 * reading a 404 as "empty"); anything else 404.
 */

/** Consul's API, where we do not implement it (prefixes of the path). */
const NOT_IMPLEMENTED: readonly string[] = [
  '/v1/session/', '/v1/event/', '/v1/query', '/v1/txn', '/v1/connect/', '/v1/operator/', '/v1/coordinate/',
  '/v1/snapshot', '/v1/config', '/v1/namespace', '/v1/partition', '/v1/peering', '/v1/internal/',
  '/v1/discovery-chain/', '/v1/exported-services', '/v1/imported-services', '/v1/acl/',
  '/v1/agent/connect/', '/v1/agent/token/', '/v1/agent/join/', '/v1/agent/leave', '/v1/agent/force-leave',
  '/v1/agent/metrics', '/v1/agent/monitor', '/v1/agent/host', '/v1/agent/reload', '/v1/agent/maintenance',
  '/v1/agent/version', '/v1/agent/check/', '/v1/agent/service/', '/v1/catalog/gateway-services/',
  '/v1/catalog/connect/', '/v1/catalog/node-services/', '/v1/health/connect/', '/v1/health/ingress/',
];

interface KnownRoute {
  pattern: RegExp;
  methods: Set<string>;
}

/** Records every route as it is added (call before adding any), and answers the unmatched. */
export function answerUnmatched(app: FastifyInstance): void {
  const routes = new Map<string, KnownRoute>();
  app.addHook('onRoute', (route: RouteOptions) => {
    let known = routes.get(route.url);
    if (known === undefined) routes.set(route.url, (known = { pattern: patternOf(route.url), methods: new Set() }));
    for (const method of [route.method].flat()) known.methods.add(method);
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0];
    const allowed = new Set<string>();
    for (const known of routes.values()) if (known.pattern.test(path)) for (const m of known.methods) allowed.add(m);
    if (allowed.size > 0) {
      const allow = [...allowed].sort().join(', ');
      reply.header('Allow', allow);
      return reply.status(405).send(new SwitchboardError('method_not_allowed', `${request.method} is not allowed on ${path} (allowed: ${allow})`).toJSON());
    }
    if (NOT_IMPLEMENTED.some((prefix) => path.startsWith(prefix))) {
      return reply.status(501).send(new SwitchboardError('not_implemented', `${path} is a Consul endpoint this registry does not implement`).toJSON());
    }
    return reply.status(404).send(new SwitchboardError('not_found', `no route for ${request.method} ${path}`).toJSON());
  });
}

/** fastify's `/a/:id/*` as a regular expression over a path. */
function patternOf(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) => (segment === '*' ? '.*' : segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}
