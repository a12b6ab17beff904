import type { FastifyInstance } from 'fastify';
import { setConsulHeaders } from './blocking';
import type { ApiContext } from './context';

/** /v1/status/…: the leader's API address ("" while there is none), and the known peers. */
export function statusRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/status/leader', async (_request, reply) => {
    setConsulHeaders(ctx, reply, ctx.view.catalogRev);
    // A bare JSON string, as Consul answers; fastify would send a returned string as text.
    reply.type('application/json; charset=utf-8');
    return JSON.stringify(ctx.election.leader());
  });

  app.get('/v1/status/peers', async (_request, reply) => {
    setConsulHeaders(ctx, reply, ctx.view.catalogRev);
    // Consul lists its raft peers; ours are the registry processes (the leader first).
    return ctx.election.members();
  });
}
