import type { FastifyInstance } from 'fastify';
import { blockingRead } from './blocking';
import { healthEntry } from './consul-json';
import { readable } from './acl';
import type { ApiContext } from './context';
import { hasTags } from './routes-catalog';
import { parseFlag, stringList } from './validation';

type NameParams = { Params: { name: string } };

/** /v1/health/service/:name — what service-discovery clients poll or block on. */
export function healthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<NameParams>('/v1/health/service/:name', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const passingOnly = parseFlag(query.passing, 'passing');
    const tags = stringList(query.tag, 'tag');
    const name = request.params.name.toLowerCase();
    await blockingRead(ctx, request, reply, name);
    return readable(request, reply, ctx.view.serviceInstances(name), (i) => i.service)
      .filter((i) => hasTags(i, tags))
      // Consul's ?passing: every check of the instance is passing (warning is not).
      .filter((i) => !passingOnly || i.checks.every((c) => c.status === 'passing'))
      .map(healthEntry);
  });
}
