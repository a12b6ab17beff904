import type { FastifyInstance } from 'fastify';
import type { Instance } from '../../catalog/model';
import { blockingRead } from './blocking';
import { DATACENTER, catalogService, serviceTags } from './consul-json';
import { readable } from './acl';
import type { ApiContext } from './context';
import { stringList } from './validation';

type NameParams = { Params: { name: string } };

/** /v1/catalog/…: every service, and one service's instances. */
export function catalogRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/catalog/services', async (request, reply) => {
    await blockingRead(ctx, request, reply, undefined);
    const names = readable(request, reply, ctx.view.serviceNames(), (name) => name);
    return serviceTags(names.map((name): [string, Instance[]] => [name, ctx.view.serviceInstances(name)]));
  });

  app.get<NameParams>('/v1/catalog/service/:name', async (request, reply) => {
    const tags = stringList((request.query as Record<string, unknown>).tag, 'tag');
    const name = request.params.name.toLowerCase();
    await blockingRead(ctx, request, reply, name);
    return readable(request, reply, ctx.view.serviceInstances(name), (i) => i.service).filter((i) => hasTags(i, tags)).map(catalogService);
  });

  app.get('/v1/catalog/datacenters', async () => [DATACENTER]);
}

/** Consul's `?tag=`: an instance matches when it has every tag asked for. */
export function hasTags(instance: Instance, tags: string[]): boolean {
  return tags.every((t) => instance.tags.includes(t));
}
