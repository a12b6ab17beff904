import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { SwitchboardError, badRequest } from '../../errors';
import { requestChild, type Logger } from '../../log';
import { counter, statusClass } from '../../metrics';
import { resolveTokens } from './acl';
import { guardClients } from './client-guard';
import type { ApiContext } from './context';
import { agentRoutes } from './routes-agent';
import { catalogRoutes } from './routes-catalog';
import { aclRoutes } from './routes-acl';
import { healthRoutes } from './routes-health';
import { statusRoutes } from './routes-status';
import { switchboardRoutes } from './routes-switchboard';
import { kvRoutes } from './routes-kv';
import { uiRoutes } from './routes-ui';
import { acceptJsonBodies } from './json-body';
import { answerUnmatched } from './unmatched';
import { setConsulHeaders } from './blocking';
import { fieldFromSchemaError } from './validation';
import type { ServerCertificates } from '../../tls/server-certificates';

/** Everything a route needs but the shutdown signal, which the server owns. */
export type ApiOptions = Omit<ApiContext, 'shutdown'>;

const httpRequests = counter('switchboard_registry_http_requests_total', 'Registry API requests by route and status class', [
  'route',
  'code_class',
] as const);

/** Largest body we read: a registration is a few KB. */
const BODY_LIMIT = 64 * 1024;
/** A blocking query's socket is quiet for up to its wait plus jitter: only then is it dead. */
const IDLE_MARGIN_MS = 30_000;

/**
 * The registry's Consul-compatible HTTP API as a fastify app, not yet listening: tests drive
 * it with `inject`, the Registry binds it to a socket.
 */
export function buildApi(options: ApiOptions, tls?: ServerCertificates): FastifyInstance {
  const shutdown = new AbortController();
  // With api.tls the server is node's https one; everything above the socket is the same.
  const https = tls !== undefined ? { https: tls.serverOptions() } : {};
  const app: FastifyInstance = Fastify({
    ...(https as object),
    // pino's Logger is a FastifyBaseLogger; the cast only widens its generic type.
    loggerInstance: options.logger.child({ component: 'registry-api' }) as unknown as FastifyBaseLogger,
    // Per-request lines would dominate the log under heartbeat traffic.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (logger, bindings, childOptions) => requestChild(logger as unknown as Logger, bindings, childOptions) as unknown as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    // fastify's defaults are 0 (never): a body dripped a byte a second would hold a socket forever.
    requestTimeout: options.clients.requestTimeout,
    connectionTimeout: Math.ceil(options.maxWaitMs + options.maxWaitMs / 16 + IDLE_MARGIN_MS),
    // node checks request timeouts on a timer (30 s by default): often enough to honour ours.
    http: {
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(options.clients.requestTimeout / 4))),
      // Headers dripped a byte at a time are cut by node itself (the body by client-guard.ts).
      headersTimeout: options.clients.requestTimeout,
    },
    // Service and check IDs may be up to 256 characters (fastify's default allows 100).
    routerOptions: { maxParamLength: 1024 },
    // Wrong types are errors, not something to coerce ("80" is not a Port).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allowUnionTypes: true } },
  });
  const ctx: ApiContext = { ...options, shutdown: shutdown.signal };

  // Protected mode is what guards writes while there are no tokens to tell writers apart.
  guardClients(app, { ...options.clients, protectedMode: options.clients.protectedMode && options.acl === undefined });
  resolveTokens(app, options.acl);
  acceptJsonBodies(app);
  app.setErrorHandler((err, request, reply) => {
    const { status, body } = errorResponse(err);
    if (status >= 500 && status !== 503) request.log.error({ err }, 'request failed');
    return reply.status(status).send(body);
  });
  answerUnmatched(app);
  // Another datacenter is not ours to answer for: Consul's own answer, word for word.
  app.addHook('onRequest', async (request, reply) => {
    const dc = (request.query as Record<string, unknown> | undefined)?.dc;
    if (dc === undefined || (typeof dc === 'string' && (dc === '' || dc.toLowerCase() === ctx.node.datacenter.toLowerCase()))) return;
    return reply.status(500).type('text/plain; charset=utf-8').send('No path to datacenter');
  });
  // Every /v1/ answer carries the X-Consul-* headers, errors included: clients read them off any response.
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/v1/') && !reply.hasHeader('x-consul-index')) setConsulHeaders(ctx, reply, ctx.view.catalogRev);
    return payload;
  });
  app.addHook('onResponse', async (request, reply) => {
    httpRequests.inc({ route: request.routeOptions.url ?? 'unmatched', code_class: statusClass(reply.statusCode) });
  });
  // Parked blocking queries would hold close() for minutes: answer them now.
  app.addHook('preClose', async () => shutdown.abort());

  agentRoutes(app, ctx);
  catalogRoutes(app, ctx);
  healthRoutes(app, ctx);
  statusRoutes(app, ctx);
  switchboardRoutes(app, ctx);
  kvRoutes(app, ctx);
  uiRoutes(app, ctx);
  aclRoutes(app, options.acl);
  return app;
}

function errorResponse(err: unknown): { status: number; body: object } {
  if (err instanceof SwitchboardError) return { status: err.status, body: err.toJSON() };
  const fastifyError = err as Partial<FastifyError>;
  const first = fastifyError.validation?.[0];
  if (first) {
    const field = fieldFromSchemaError(first);
    return { status: 400, body: badRequest(field, first.message ?? 'invalid').toJSON() };
  }
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return { status, body: { error: 'bad_request', message: fastifyError.message ?? 'bad request' } };
  }
  return { status: 500, body: { error: 'internal_error', message: 'internal error' } };
}
