import type { FastifyInstance } from 'fastify';
import type { ApiContext } from './context';
import { parseRevision } from './validation';

/**
 * Our extensions: what proxies sync from. `changes?since=N` answers only the services that
 * changed after N (full catalog when N is 0 or too old); `min=M` waits briefly until this
 * registry has caught up with revision M (the revision of a bus message a proxy just got).
 */
export function switchboardRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/switchboard/changes', async (request) => {
    const query = request.query as Record<string, unknown>;
    const since = parseRevision(query.since, 'since') ?? 0;
    const min = parseRevision(query.min, 'min');
    return ctx.view.changes(since, min);
  });

  app.get('/v1/switchboard/snapshot', async () => ctx.view.changes(0));
}
