import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SwitchboardError } from '../../errors';
import type { AclStore } from '../acl/acl-store';
import { Authorizer } from '../acl/rules';

/**
 * Who a request is, for the routes: its token's Authorizer. Token sources in Consul's order:
 * `?token=`, `X-Consul-Token`, `Authorization: Bearer`. With ACLs off every request may do
 * everything (protected mode guards writes then, client-guard.ts).
 */

declare module 'fastify' {
  interface FastifyRequest {
    authorizer: Authorizer;
  }
}

const EVERYTHING = Authorizer.management();

export function resolveTokens(app: FastifyInstance, acl: AclStore | undefined): void {
  app.decorateRequest('authorizer', null as unknown as Authorizer);
  app.addHook('onRequest', async (request) => {
    request.authorizer = acl === undefined ? EVERYTHING : acl.authorizerFor(tokenOf(request));
  });
}

export function tokenOf(request: FastifyRequest): string | undefined {
  const query = (request.query as Record<string, unknown> | undefined)?.token;
  if (typeof query === 'string' && query !== '') return query;
  const header = request.headers['x-consul-token'];
  if (typeof header === 'string' && header !== '') return header;
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string' && /^bearer\s+/i.test(authorization)) return authorization.replace(/^bearer\s+/i, '');
  return undefined;
}

/** 403 unless the token may write to `service` (Consul's "Permission denied"). */
export function requireServiceWrite(request: FastifyRequest, service: string): void {
  if (!request.authorizer.serviceWrite(service)) throw permissionDenied(`service:write on "${service}"`);
}

export function requireManagement(request: FastifyRequest): void {
  if (!request.authorizer.isManagement) throw permissionDenied('acl:write');
}

export function permissionDenied(what: string): SwitchboardError {
  return new SwitchboardError('forbidden', `Permission denied: token lacks ${what}`);
}

/** Keeps what the token may read; says so in Consul's header when something was left out. */
export function readable<T>(request: FastifyRequest, reply: FastifyReply, items: readonly T[], serviceOf: (item: T) => string): T[] {
  const kept = items.filter((item) => request.authorizer.serviceRead(serviceOf(item)));
  if (kept.length !== items.length) reply.header('x-consul-results-filtered-by-acls', 'true');
  return kept;
}
