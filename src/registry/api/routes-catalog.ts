import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Instance } from '../../catalog/model';
import { SwitchboardError } from '../../errors';
import { blockingRead, awaitVisible } from './blocking';
import { agentService, catalogNode, catalogService, serviceTags } from './consul-json';
import { readable, requireServiceWrite } from './acl';
import type { ApiContext } from './context';
import { applyFilter, parseFilter } from './filter';
import { CATALOG_DEREGISTER_SCHEMA, CATALOG_REGISTER_SCHEMA, parseCatalogRegistration, stringList } from './validation';
import { clientAddress } from './routes-agent';

type NameParams = { Params: { name: string } };
type NodeParams = { Params: { node: string } };

/**
 * /v1/catalog/…: services, one service's instances, the node they are listed on, and the
 * catalog's own register/deregister (what registrator-style tools and consul-esm call).
 * Every instance is on one node (config `nodeName`, see consul-json.ts).
 */
export function catalogRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/catalog/services', async (request, reply) => {
    const filter = parseFilter(queryOf(request).filter);
    const nodeMeta = nodeMetaMatches(request);
    await blockingRead(ctx, request, reply, undefined);
    const names = readable(request, reply, ctx.view.serviceNames(), (name) => name);
    // A filter selects instances (Consul's ServiceNode fields); a service is listed with the tags of those that match.
    const pairs = names.map((name): [string, Instance[]] => [name, nodeMeta ? applyFilter(filter, ctx.view.serviceInstances(name), (i) => catalogService(i, ctx.node)) : []]);
    return serviceTags(pairs.filter(([, instances]) => instances.length > 0));
  });

  app.get<NameParams>('/v1/catalog/service/:name', async (request, reply) => {
    const tags = stringList(queryOf(request).tag, 'tag');
    const filter = parseFilter(queryOf(request).filter);
    const nodeMeta = nodeMetaMatches(request);
    const name = request.params.name.toLowerCase();
    await blockingRead(ctx, request, reply, name);
    if (!nodeMeta) return [];
    const rows = readable(request, reply, ctx.view.serviceInstances(name), (i) => i.service)
      .filter((i) => hasTags(i, tags))
      .map((i) => catalogService(i, ctx.node));
    return applyFilter(filter, rows);
  });

  app.get('/v1/catalog/nodes', async (request, reply) => {
    const filter = parseFilter(queryOf(request).filter);
    const nodeMeta = nodeMetaMatches(request);
    await blockingRead(ctx, request, reply, undefined);
    return nodeMeta && request.authorizer.nodeRead(ctx.node.name) ? applyFilter(filter, [catalogNode(ctx.node, ctx.view.catalogRev)]) : [];
  });

  app.get<NodeParams>('/v1/catalog/node/:node', async (request, reply) => {
    const filter = parseFilter(queryOf(request).filter);
    await blockingRead(ctx, request, reply, undefined);
    // Consul answers an unknown node 200 with null.
    if (request.params.node !== ctx.node.name || !request.authorizer.nodeRead(ctx.node.name)) return null;
    const services: Record<string, unknown> = {};
    const instances = readable(request, reply, [...ctx.view.instances()], (i) => i.service);
    const shaped: Array<Record<string, unknown>> = instances.map((i) => ({ ...agentService(i, ctx.node), CreateIndex: i.createIndex, ModifyIndex: i.modifyIndex }));
    for (const service of applyFilter(filter, shaped)) services[service.ID as string] = service;
    return { Node: catalogNode(ctx.node, ctx.view.catalogRev), Services: services };
  });

  app.get('/v1/catalog/datacenters', async () => [ctx.node.datacenter]);

  app.put('/v1/catalog/register', {
    schema: { body: CATALOG_REGISTER_SCHEMA },
    handler: async (request, reply) => {
      const spec = parseCatalogRegistration(request.body, {
        remoteAddress: clientAddress(request),
        replaceExistingChecks: false,
        targets: ctx.targets,
        domain: ctx.domain,
        minCheckIntervalMs: ctx.minCheckIntervalMs,
        scriptChecks: false,
      });
      // A node without a service: nodes are not kept here (every instance is on ours).
      if (spec === undefined) return sendTrue(reply);
      requireServiceWrite(request, spec.service);
      await awaitVisible(ctx, await ctx.writer.register(spec));
      return sendTrue(reply);
    },
  });

  app.put('/v1/catalog/deregister', {
    schema: { body: CATALOG_DEREGISTER_SCHEMA },
    handler: async (request, reply) => {
      const body = request.body as { ServiceID?: string; CheckID?: string };
      if (body.CheckID !== undefined) {
        const owner = ctx.view.checkOwner(body.CheckID);
        const service = owner === undefined ? undefined : ctx.view.instance(owner)?.service;
        if (service !== undefined) requireServiceWrite(request, service);
        await awaitVisible(ctx, await ctx.writer.removeCheck(body.CheckID));
      } else if (body.ServiceID !== undefined) {
        const known = ctx.view.instance(body.ServiceID);
        if (known !== undefined) requireServiceWrite(request, known.service);
        await awaitVisible(ctx, await ctx.writer.deregister(body.ServiceID));
      } else {
        throw new SwitchboardError('bad_request', 'ServiceID or CheckID: deregistering a whole node is not supported (instances are not tied to nodes here)', { field: 'ServiceID' });
      }
      return sendTrue(reply);
    },
  });
}

/** Consul's `?tag=`: an instance matches when it has every tag asked for. */
export function hasTags(instance: Instance, tags: string[]): boolean {
  return tags.every((t) => instance.tags.includes(t));
}

/** `?node-meta=key:value` (repeatable): our node has no metadata, so any asked-for pair excludes it. */
export function nodeMetaMatches(request: FastifyRequest): boolean {
  return stringList(queryOf(request)['node-meta'], 'node-meta').length === 0;
}

export function queryOf(request: FastifyRequest): Record<string, unknown> {
  return request.query as Record<string, unknown>;
}

function sendTrue(reply: FastifyReply): FastifyReply {
  reply.type('application/json; charset=utf-8');
  return reply.send('true');
}
