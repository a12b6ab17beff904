import type { FastifyInstance } from 'fastify';
import { SwitchboardError, badRequest } from '../../errors';
import type { AclStore } from '../acl/acl-store';
import { requireManagement, tokenOf } from './acl';

/**
 * /v1/acl/…, Consul's shapes: bootstrap (one management token, once), policies with rules,
 * tokens that name policies or service identities, the caller's own token, and deletion.
 * Secrets are shown once, at creation; the store keeps only their hashes.
 */
export function aclRoutes(app: FastifyInstance, acl: AclStore | undefined): void {
  const store = (): AclStore => {
    if (acl === undefined) throw new SwitchboardError('forbidden', 'ACL support disabled (acl.enabled is false)');
    return acl;
  };

  app.put('/v1/acl/bootstrap', async () => {
    const { token, secret } = await store().bootstrap();
    return tokenJson(token, secret, store());
  });

  app.put('/v1/acl/policy', { config: { jsonBody: true } }, async (request) => {
    requireManagement(request);
    const body = objectBody(request.body);
    const name = stringField(body, 'Name', true) as string;
    const rules = stringField(body, 'Rules', false) ?? '';
    const policy = await store().createPolicy(name, rules, stringField(body, 'Description', false) ?? '');
    return { ID: policy.id, Name: policy.name, Description: policy.description, Rules: policy.rules };
  });

  app.put('/v1/acl/token', { config: { jsonBody: true } }, async (request) => {
    requireManagement(request);
    const body = objectBody(request.body);
    const policies = arrayField(body, 'Policies').map((p, i) => {
      const ref = objectBody(p, `Policies[${i}]`);
      return { ID: stringField(ref, 'ID', false), Name: stringField(ref, 'Name', false) };
    });
    const identities = arrayField(body, 'ServiceIdentities').map((s, i) => stringField(objectBody(s, `ServiceIdentities[${i}]`), 'ServiceName', true) as string);
    const { token, secret } = await store().createToken({ description: stringField(body, 'Description', false) ?? '', policies, serviceIdentities: identities });
    return tokenJson(token, secret, store());
  });

  app.get('/v1/acl/token/self', async (request) => {
    const secret = tokenOf(request);
    const token = secret === undefined ? undefined : store().tokenBySecret(secret);
    if (token === undefined || secret === undefined) throw new SwitchboardError('forbidden', 'ACL not found');
    return tokenJson(token, secret, store());
  });

  app.delete<{ Params: { id: string } }>('/v1/acl/token/:id', async (request) => {
    requireManagement(request);
    if (!(await store().deleteToken(request.params.id))) throw new SwitchboardError('not_found', `no token ${request.params.id}`);
    return true;
  });
}

function tokenJson(token: { accessorId: string; description: string; policies: string[]; serviceIdentities: string[] }, secret: string, acl: AclStore): object {
  return {
    AccessorID: token.accessorId,
    SecretID: secret,
    Description: token.description,
    Policies: token.policies.map((id) => ({ ID: id, Name: acl.policyName(id) ?? '' })),
    ServiceIdentities: token.serviceIdentities.map((name) => ({ ServiceName: name })),
    Local: false,
  };
}

function objectBody(value: unknown, field = 'body'): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest(field, 'must be a JSON object');
  return value as Record<string, unknown>;
}

function stringField(body: Record<string, unknown>, key: string, required: boolean): string | undefined {
  const value = body[key];
  if (value === undefined || value === null || value === '') {
    if (required) throw badRequest(key, 'is required');
    return undefined;
  }
  if (typeof value !== 'string' || value.length > 4096) throw badRequest(key, 'must be a string of at most 4096 characters');
  return value;
}

function arrayField(body: Record<string, unknown>, key: string): unknown[] {
  const value = body[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.length > 64) throw badRequest(key, 'must be a list of at most 64');
  return value;
}
