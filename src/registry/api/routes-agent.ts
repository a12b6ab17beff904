import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { instanceHealth, type HealthStatus, type Instance } from '../../catalog/model';
import { applyFilter, parseFilter } from './filter';
import { parseListen } from '../../config/schema';
import { SwitchboardError } from '../../errors';
import { awaitVisible, blockingRead } from './blocking';
import { agentService, healthCheck, canonicalCheckUpdate, canonicalRegistration } from './consul-json';
import { permissionDenied, readable, requireServiceWrite } from './acl';
import type { ApiContext } from './context';
import { isLoopback } from './client-guard';
import { parsePrefixTag } from '../../proxy/router';
import { CHECK_REGISTER_SCHEMA, CHECK_UPDATE_SCHEMA, MAX_OUTPUT, REGISTER_SCHEMA, optionalString, parseCheckRegistration, parseFlag, parseRegistration } from './validation';

type IdParams = { Params: { id: string } };
type CheckParams = { Params: { checkId: string } };

const CHECK_ACTIONS: Record<string, HealthStatus> = { pass: 'passing', warn: 'warning', fail: 'critical' };

/** /v1/agent/…: register, deregister, TTL heartbeats, and the agent's view of services. */
export function agentRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.put('/v1/agent/service/register', {
    schema: { body: REGISTER_SCHEMA },
    preValidation: async (request) => {
      request.body = canonicalRegistration(request.body);
    },
    handler: async (request, reply) => {
      const query = request.query as Record<string, unknown>;
      const spec = parseRegistration(request.body, {
        remoteAddress: clientAddress(request),
        replaceExistingChecks: parseFlag(query['replace-existing-checks'], 'replace-existing-checks'),
        targets: ctx.targets,
        domain: ctx.domain,
        minCheckIntervalMs: ctx.minCheckIntervalMs,
        scriptChecks: ctx.scriptChecks,
      });
      requireServiceWrite(request, spec.service);
      if (spec.checks.some((c) => c.type === 'script')) requireScriptRights(request, ctx);
      refuseTakenClaims(request, ctx, spec.service, spec.tags);
      await awaitVisible(ctx, await ctx.writer.register(spec));
      return reply.send('');
    },
  });

  app.put('/v1/agent/check/register', {
    schema: { body: CHECK_REGISTER_SCHEMA },
    handler: async (request, reply) => {
      const { serviceId, check } = parseCheckRegistration(request.body, {
        remoteAddress: clientAddress(request),
        replaceExistingChecks: false,
        targets: ctx.targets,
        domain: ctx.domain,
        minCheckIntervalMs: ctx.minCheckIntervalMs,
        scriptChecks: ctx.scriptChecks,
      });
      const instance = ctx.view.instance(serviceId);
      if (instance === undefined) throw new SwitchboardError('bad_request', `ServiceID: no registered service instance "${serviceId}"`, { field: 'ServiceID' });
      requireServiceWrite(request, instance.service);
      if (check.type === 'script') requireScriptRights(request, ctx);
      await awaitVisible(ctx, await ctx.writer.putCheck(serviceId, check));
      return reply.send('');
    },
  });

  app.put<CheckParams>('/v1/agent/check/deregister/:checkId', async (request, reply) => {
    requireCheckWrite(request, ctx, request.params.checkId);
    await awaitVisible(ctx, await ctx.writer.removeCheck(request.params.checkId));
    return reply.send('');
  });

  app.put<IdParams>('/v1/agent/service/deregister/:id', async (request, reply) => {
    const known = ctx.view.instance(request.params.id);
    if (known !== undefined) requireServiceWrite(request, known.service);
    await awaitVisible(ctx, await ctx.writer.deregister(request.params.id));
    return reply.send('');
  });

  for (const [action, status] of Object.entries(CHECK_ACTIONS)) {
    app.put<CheckParams>(`/v1/agent/check/${action}/:checkId`, async (request, reply) => {
      requireCheckWrite(request, ctx, request.params.checkId);
      const note = optionalString((request.query as Record<string, unknown>).note, 'note') ?? '';
      await awaitVisible(ctx, await ctx.writer.updateCheck(request.params.checkId, status, note.slice(0, MAX_OUTPUT)));
      return reply.send('');
    });
  }

  app.put<CheckParams>('/v1/agent/check/update/:checkId', {
    schema: { body: CHECK_UPDATE_SCHEMA },
    preValidation: async (request) => {
      request.body = canonicalCheckUpdate(request.body);
    },
    handler: async (request, reply) => {
      requireCheckWrite(request, ctx, request.params.checkId);
      const body = request.body as { Status: HealthStatus; Output?: string };
      const output = (body.Output ?? '').slice(0, MAX_OUTPUT);
      await awaitVisible(ctx, await ctx.writer.updateCheck(request.params.checkId, body.Status, output));
      return reply.send('');
    },
  });

  app.get('/v1/agent/services', async (request, reply) => {
    const filter = parseFilter((request.query as Record<string, unknown>).filter);
    await blockingRead(ctx, request, reply, undefined);
    const out: Record<string, unknown> = {};
    const services = readable(request, reply, [...ctx.view.instances()], (i) => i.service).map((i) => agentService(i, ctx.node));
    for (const service of applyFilter(filter, services)) out[service.ID as string] = service;
    return out;
  });

  app.get('/v1/agent/checks', async (request, reply) => {
    const filter = parseFilter((request.query as Record<string, unknown>).filter);
    await blockingRead(ctx, request, reply, undefined);
    const out: Record<string, unknown> = {};
    const instances = readable(request, reply, [...ctx.view.instances()], (i) => i.service);
    const checks = instances.flatMap((i) => i.checks.map((c) => healthCheck(i, c, ctx.node)));
    for (const check of applyFilter(filter, checks)) out[check.CheckID as string] = check;
    return out;
  });

  // Every registry process is a member (one, with the embedded store), named by its API address.
  app.get('/v1/agent/members', async () =>
    ctx.election.members().map((address) => {
      const { host, port } = parseListen(address) ?? { host: '', port: 0 };
      return { Name: address, Addr: host, Port: port, Tags: { dc: ctx.node.datacenter, role: 'consul' }, Status: 1, ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4 };
    }),
  );

  /** Maintenance mode (Consul's): a critical check that takes the instance out of every proxy's rotation. */
  app.put<IdParams>('/v1/agent/service/maintenance/:id', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    if (query.enable === undefined) throw new SwitchboardError('bad_request', 'enable: required (true or false)', { field: 'enable' });
    const enable = parseFlag(query.enable, 'enable');
    const reason = (optionalString(query.reason, 'reason') ?? '').slice(0, MAX_OUTPUT);
    const instance = ctx.view.instance(request.params.id);
    if (instance === undefined) throw new SwitchboardError('not_found', `unknown service ID "${request.params.id}"`);
    requireServiceWrite(request, instance.service);
    const checkId = maintenanceCheckId(instance.id);
    const present = instance.checks.some((c) => c.checkId === checkId);
    if (enable) {
      const notes = reason || 'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.';
      await awaitVisible(ctx, await ctx.writer.putCheck(instance.id, { checkId, name: 'Service Maintenance Mode', type: 'maintenance', notes, status: 'critical' }));
    } else if (present) {
      await awaitVisible(ctx, await ctx.writer.removeCheck(checkId));
    }
    return reply.send('');
  });

  app.get<IdParams>('/v1/agent/health/service/id/:id', async (request, reply) => {
    const instance = ctx.view.instance(request.params.id);
    if (instance === undefined || !request.authorizer.serviceRead(instance.service)) {
      return reply.status(404).type('text/plain; charset=utf-8').send(`ServiceId ${request.params.id} not found`);
    }
    return sendAggregated(request, reply, [instance], ctx, false);
  });

  app.get<{ Params: { name: string } }>('/v1/agent/health/service/name/:name', async (request, reply) => {
    const name = request.params.name.toLowerCase();
    const instances = readable(request, reply, ctx.view.serviceInstances(name), (i) => i.service);
    if (instances.length === 0) return reply.status(404).type('text/plain; charset=utf-8').send(`ServiceName ${request.params.name} Not Found`);
    return sendAggregated(request, reply, instances, ctx, true);
  });

  app.get<IdParams>('/v1/agent/service/:id', async (request, reply) => {
    const known = ctx.view.instance(request.params.id);
    if (!known || !request.authorizer.serviceRead(known.service)) throw new SwitchboardError('not_found', `unknown service ID "${request.params.id}"`);
    await blockingRead(ctx, request, reply, known.service);
    const instance = ctx.view.instance(request.params.id);
    if (!instance) throw new SwitchboardError('not_found', `service ID "${request.params.id}" was deregistered`);
    return agentService(instance, ctx.node);
  });

  // Prometheus' consul_sd asks the agent for its datacenter when none is configured.
  app.get('/v1/agent/self', async () => ({
    Config: { Datacenter: ctx.node.datacenter, NodeName: ctx.node.name, NodeID: '', Server: true, Version: '1.15.0' },
    Member: { Name: ctx.node.name, Addr: '', Port: 0, Status: 1, Tags: { dc: ctx.node.datacenter } },
  }));
}

const AGGREGATED_CODE: Record<string, number> = { passing: 200, warning: 429, critical: 503 };

/**
 * /v1/agent/health/service/…: the status code says the (worst) aggregated status, as load
 * balancers' health checks read it; `?format=text` answers the status alone.
 */
function sendAggregated(request: FastifyRequest, reply: FastifyReply, instances: Instance[], ctx: ApiContext, many: boolean): FastifyReply {
  // Consul's aggregated status is the worst of the checks: our instance health.
  const statuses = instances.map(instanceHealth);
  const worst = statuses.includes('critical') ? 'critical' : statuses.includes('warning') ? 'warning' : 'passing';
  reply.status(AGGREGATED_CODE[worst]);
  if ((request.query as Record<string, unknown>).format === 'text') return reply.type('text/plain; charset=utf-8').send(worst);
  const entries = instances.map((i, n) => ({ AggregatedStatus: statuses[n], Service: agentService(i, ctx.node), Checks: i.checks.map((c) => healthCheck(i, c, ctx.node)) }));
  return reply.send(many ? entries : entries[0]);
}

/** Consul's ID for a service's maintenance check. */
export function maintenanceCheckId(serviceId: string): string {
  return `_service_maintenance:${serviceId}`;
}

/** Updating a check is writing to the service that owns it. */
function requireCheckWrite(request: FastifyRequest, ctx: ApiContext, checkId: string): void {
  const owner = ctx.view.checkOwner(checkId);
  const service = owner === undefined ? undefined : ctx.view.instance(owner)?.service;
  if (service !== undefined) requireServiceWrite(request, service);
}

/**
 * A `urlprefix-` route another service already claims is not for the taking: only a
 * management token may move it.
 */
function refuseTakenClaims(request: FastifyRequest, ctx: ApiContext, service: string, tags: readonly string[]): void {
  if (request.authorizer.isManagement || ctx.acl === undefined) return;
  const claims = new Set(tags.flatMap((tag) => prefixClaim(tag)));
  if (claims.size === 0) return;
  for (const other of ctx.view.serviceNames()) {
    if (other === service) continue;
    for (const instance of ctx.view.serviceInstances(other)) {
      for (const tag of instance.tags) {
        for (const claim of prefixClaim(tag)) if (claims.has(claim)) throw permissionDenied(`a route ${claim} already claimed by service "${other}"`);
      }
    }
  }
}

function prefixClaim(tag: string): string[] {
  const rule = parsePrefixTag(tag);
  return rule === undefined ? [] : [`${rule.host}${rule.prefix}`];
}

/** The registering peer's IP, without the IPv4-mapped IPv6 prefix. */
export function clientAddress(request: FastifyRequest): string {
  const ip = request.ip || request.socket.remoteAddress || '';
  return ip.startsWith('::ffff:') ? ip.slice('::ffff:'.length) : ip;
}

/**
 * A script check runs a program on this host: only loopback clients, or (with ACLs on) tokens
 * with agent:write on this node, may register one — whatever service:write they have.
 */
function requireScriptRights(request: FastifyRequest, ctx: ApiContext): void {
  if (isLoopback(request.socket.remoteAddress)) return;
  if (ctx.acl !== undefined && request.authorizer.agentWrite(ctx.node.name)) return;
  throw permissionDenied(`agent:write on "${ctx.node.name}" (script checks are accepted from loopback clients, or tokens with agent:write)`);
}
