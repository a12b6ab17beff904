import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readable } from './acl';
import type { ApiContext } from './context';
import { parseRevision } from './validation';

/**
 * Our extensions: what proxies sync from. `changes?since=N` answers only the services that
 * changed after N (full catalog when N is 0 or too old); `min=M` waits briefly until this
 * registry has caught up with revision M (the revision of a bus message a proxy just got).
 */
export function switchboardRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/switchboard/changes', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const since = parseRevision(query.since, 'since') ?? 0;
    const min = parseRevision(query.min, 'min');
    return readableChanges(request, reply, await ctx.view.changes(since, min));
  });

  app.get('/v1/switchboard/snapshot', async (request, reply) => readableChanges(request, reply, await ctx.view.changes(0)));
}

/** A proxy's token sees the services it may read (a management or service_prefix "" read token sees all). */
function readableChanges<T extends { services: Record<string, unknown> }>(request: FastifyRequest, reply: FastifyReply, delta: T): T {
  const names = Object.keys(delta.services);
  const kept = readable(request, reply, names, (name) => name);
  if (kept.length === names.length) return delta;
  return { ...delta, services: Object.fromEntries(kept.map((name) => [name, delta.services[name]])) };
}
