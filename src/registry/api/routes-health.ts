import type { FastifyInstance } from 'fastify';
import type { Instance } from '../../catalog/model';
import { badRequest } from '../../errors';
import { blockingRead } from './blocking';
import { healthCheck, healthEntry } from './consul-json';
import { readable } from './acl';
import type { ApiContext } from './context';
import { applyFilter, parseFilter } from './filter';
import { hasTags, nodeMetaMatches, queryOf } from './routes-catalog';
import { parseFlag, stringList } from './validation';

type NameParams = { Params: { name: string } };
type NodeParams = { Params: { node: string } };
type StateParams = { Params: { state: string } };

const STATES = new Set(['any', 'passing', 'warning', 'critical']);

/** /v1/health/…: instances with their checks (what discovery clients poll or block on), and checks by service, node or state. */
export function healthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  // `?near=` is accepted and ignored: there are no network coordinates here.
  app.get<NameParams>('/v1/health/service/:name', async (request, reply) => {
    const query = queryOf(request);
    const passingOnly = parseFlag(query.passing, 'passing');
    const tags = stringList(query.tag, 'tag');
    const filter = parseFilter(query.filter);
    const nodeMeta = nodeMetaMatches(request);
    const name = request.params.name.toLowerCase();
    await blockingRead(ctx, request, reply, name);
    if (!nodeMeta) return [];
    const entries = readable(request, reply, ctx.view.serviceInstances(name), (i) => i.service)
      .filter((i) => hasTags(i, tags))
      // Consul's ?passing: every check of the instance is passing (warning is not).
      .filter((i) => !passingOnly || i.checks.every((c) => c.status === 'passing'))
      .map((i) => healthEntry(i, ctx.node));
    return applyFilter(filter, entries);
  });

  app.get<NameParams>('/v1/health/checks/:name', async (request, reply) => {
    const filter = parseFilter(queryOf(request).filter);
    const nodeMeta = nodeMetaMatches(request);
    const name = request.params.name.toLowerCase();
    await blockingRead(ctx, request, reply, name);
    if (!nodeMeta) return [];
    return applyFilter(filter, checksOf(readable(request, reply, ctx.view.serviceInstances(name), (i) => i.service), ctx));
  });

  app.get<NodeParams>('/v1/health/node/:node', async (request, reply) => {
    const filter = parseFilter(queryOf(request).filter);
    await blockingRead(ctx, request, reply, undefined);
    if (request.params.node !== ctx.node.name || !request.authorizer.nodeRead(ctx.node.name)) return [];
    return applyFilter(filter, checksOf(readable(request, reply, [...ctx.view.instances()], (i) => i.service), ctx));
  });

  app.get<StateParams>('/v1/health/state/:state', async (request, reply) => {
    const state = request.params.state;
    if (!STATES.has(state)) throw badRequest('state', 'must be any, passing, warning or critical');
    const filter = parseFilter(queryOf(request).filter);
    const nodeMeta = nodeMetaMatches(request);
    await blockingRead(ctx, request, reply, undefined);
    if (!nodeMeta) return [];
    const checks = checksOf(readable(request, reply, [...ctx.view.instances()], (i) => i.service), ctx);
    return applyFilter(filter, state === 'any' ? checks : checks.filter((c) => c.Status === state));
  });
}

/** Every check of `instances` in Consul's HealthCheck shape. */
function checksOf(instances: readonly Instance[], ctx: ApiContext): Array<Record<string, unknown>> {
  return instances.flatMap((i) => i.checks.map((c) => healthCheck(i, c, ctx.node)));
}
