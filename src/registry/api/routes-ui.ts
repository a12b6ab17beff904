import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { instanceHealth, type Check, type Instance } from '../../catalog/model';
import { SwitchboardError } from '../../errors';
import type { InstanceReport } from '../../bus/proxy-report';
import { STALE_MS } from '../ui/runtime-view';
import { permissionDenied, readable, requireServiceWrite } from './acl';
import { awaitVisible } from './blocking';
import type { ApiContext } from './context';
import { parseFlag } from './validation';
import { parsePrefixTag } from '../../proxy/router';

/**
 * The web UI: its static files at /ui/, and the JSON it is made from — documented endpoints
 * under /v1/switchboard/ui/ that scripts can use as well:
 *
 *   GET /v1/switchboard/ui/services          every service, instance counts by state, routes
 *   GET /v1/switchboard/ui/service/:name     its instances: checks, what each proxy sees, why
 *   GET /v1/switchboard/ui/cluster           registries, store, proxies (lag, resyncs), timeline
 *   GET /v1/switchboard/ui/stream            Server-Sent Events: `change` whenever any of it did
 *   PUT /v1/switchboard/drain/:id?enable=    drain (no new requests) or undrain an instance
 *
 * Reads are filtered by the token's rights like every read; each service says whether the
 * token may act on it (`canWrite`), so the UI shows actions only where they would work.
 */

type NameParams = { Params: { name: string } };
type IdParams = { Params: { id: string } };

/** How often the stream looks for news (in memory: a version compare). */
const STREAM_POLL_MS = 250;
const STREAM_PING_MS = 15_000;

export function uiRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { runtime, events } = ctx.ui;

  app.get('/v1/switchboard/ui/services', async (request, reply) => {
    const names = readable(request, reply, ctx.view.serviceNames(), (n) => n);
    const ejected = runtime.ejectedSet();
    return names.map((name) => {
      const instances = ctx.view.serviceInstances(name);
      const counts = { passing: 0, warning: 0, critical: 0, ejected: 0, draining: 0, maintenance: 0 };
      for (const i of instances) {
        counts[instanceHealth(i)]++;
        if (ejected.has(`${name}\0${i.id}`)) counts.ejected++;
        if (i.drained === true) counts.draining++;
        if (i.checks.some((c) => c.type === 'maintenance')) counts.maintenance++;
      }
      return { name, instances: instances.length, counts, tags: [...new Set(instances.flatMap((i) => i.tags))].sort(), routes: routesOf(name, instances, ctx.domain, runtime.configuredRoutes(name)), canWrite: request.authorizer.serviceWrite(name) };
    });
  });

  app.get<NameParams>('/v1/switchboard/ui/service/:name', async (request) => {
    const name = request.params.name.toLowerCase();
    if (!request.authorizer.serviceRead(name)) throw permissionDenied(`service:read on "${name}"`);
    const instances = ctx.view.serviceInstances(name);
    if (instances.length === 0) throw new SwitchboardError('not_found', `no service "${name}"`);
    const proxies = runtime.list().map((p) => ({ proxy: p.report.proxy, stale: p.stale, panic: Object.prototype.hasOwnProperty.call(p.report.services, name) ? p.report.services[name].panic : false }));
    return {
      name,
      routes: routesOf(name, instances, ctx.domain, runtime.configuredRoutes(name)),
      canWrite: request.authorizer.serviceWrite(name),
      proxies,
      instances: instances.map((i) => {
        const views = runtime.instanceViews(name, i.id);
        return {
          id: i.id,
          address: i.address,
          port: i.port,
          tags: i.tags,
          meta: i.meta,
          weights: i.weights,
          health: instanceHealth(i),
          drained: i.drained === true,
          maintenance: i.checks.find((c) => c.type === 'maintenance')?.notes ?? null,
          checks: i.checks.map((c) => ({ id: c.checkId, name: c.name, type: c.type, status: c.status, output: c.output, notes: c.notes ?? '', since: c.statusSince })),
          proxies: views.map((v) => ({ proxy: v.proxy, stale: v.stale, ...(v.state ?? {}) })),
          explain: explain(i, views.filter((v) => !v.stale)),
          history: runtime.historyOf(name, i.id),
        };
      }),
    };
  });

  app.get('/v1/switchboard/ui/cluster', async () => {
    const leader = ctx.election.leader();
    const registryRev = ctx.view.catalogRev;
    const proxies = runtime.list();
    return {
      leader,
      registries: ctx.election.members().map((address) => ({ address, leader: address === leader })),
      store: { kind: ctx.ui.storeKind ?? 'unknown', healthy: ctx.storeHealthy?.() ?? true, revision: ctx.view.rev, catalogRevision: registryRev },
      bus: { status: ctx.ui.bus?.() ?? 'unknown' },
      proxies: proxies.map((p) => ({
        proxy: p.report.proxy,
        address: p.report.address,
        pid: p.report.pid,
        // Workers of one `switchboard proxy --workers N` share its address and report each.
        workers: proxies.filter((q) => !q.stale && q.report.address === p.report.address).length,
        rev: p.report.rev,
        behind: Math.max(0, registryRev - p.report.rev),
        lastResync: p.report.lastResync ?? null,
        lastSeenMs: Date.now() - p.receivedAt,
        stale: p.stale,
      })),
      staleAfterMs: STALE_MS,
      events: events.recent(100),
    };
  });

  app.get('/v1/switchboard/ui/stream', (request, reply) => stream(request, reply, ctx));

  app.put<IdParams>('/v1/switchboard/drain/:id', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    if (query.enable === undefined) throw new SwitchboardError('bad_request', 'enable: required (true or false)', { field: 'enable' });
    const enable = parseFlag(query.enable, 'enable');
    const instance = ctx.view.instance(request.params.id);
    if (instance === undefined) throw new SwitchboardError('not_found', `unknown service ID "${request.params.id}"`);
    requireServiceWrite(request, instance.service);
    await awaitVisible(ctx, await ctx.writer.setDrained(instance.id, enable));
    return reply.send('');
  });

  serveStatic(app);
}

/** How clients reach the service through a proxy: its host, its path, the proxies' configured routes, and `urlprefix-` tags. */
function routesOf(name: string, instances: readonly Instance[], domain: string, configured: readonly string[]): string[] {
  const routes = new Set([`${name}.${domain}`, `/${name}/`, ...configured]);
  for (const i of instances) {
    for (const tag of i.tags) {
      const rule = parsePrefixTag(tag);
      if (rule !== undefined) routes.add(`${rule.host}${rule.prefix}`);
    }
  }
  return [...routes];
}

/** The rule that decides an instance's share of traffic right now, in one line. */
export function explain(instance: Instance, views: ReadonlyArray<{ proxy: string; state: InstanceReport | undefined; panic: boolean }>): string {
  if (instance.drained === true) return 'drained: no new requests (requests in flight finish)';
  const maintenance = instance.checks.find((c) => c.type === 'maintenance');
  if (maintenance !== undefined) return `maintenance: ${maintenance.notes || 'no reason given'}`;
  const health = instanceHealth(instance);
  if (health === 'critical') return `critical: ${describeFailing(instance.checks)} — no traffic until it passes`;
  const ejected = views.filter((v) => v.state?.ejected !== undefined);
  if (ejected.length > 0) {
    const { reason, remainingMs } = ejected[0].state?.ejected as { reason: string; remainingMs: number };
    const by = ejected.length === views.length ? 'every proxy' : `${ejected.length} of ${views.length} proxies`;
    return `ejected by ${by}: ${reason.replace(/_/g, ' ')}, back in ${Math.ceil(remainingMs / 1000)} s`;
  }
  if (views.some((v) => v.panic)) return 'service in panic: too few healthy instances, so health verdicts are set aside';
  if (views.some((v) => v.state?.probeFailing === true)) return 'failing active probes: out of rotation until they pass';
  const warm = views.find((v) => v.state?.warm !== undefined)?.state?.warm;
  if (warm !== undefined) return `slow start: ${Math.round(warm * 100)} % of its weight while it warms up`;
  const latency = views.find((v) => v.state?.latencyFactor !== undefined)?.state?.latencyFactor;
  if (latency !== undefined) return `slower than its peers: ${(latency * 100).toFixed(latency < 0.1 ? 1 : 0)} % of its weight`;
  if (health === 'warning') return `warning: weight ${instance.weights.warning} (Weights.Warning) — ${describeFailing(instance.checks)}`;
  return `passing: full weight ${instance.weights.passing}`;
}

function describeFailing(checks: readonly Check[]): string {
  const failing = checks.filter((c) => c.status !== 'passing');
  if (failing.length === 0) return 'no failing check';
  return failing.map((c) => `${c.name}${c.output ? ` (${c.output.slice(0, 80)})` : ''}`).join(', ');
}

/** Server-Sent Events: one `change` event whenever the catalog, a proxy report or the timeline moved. */
function stream(request: FastifyRequest, reply: FastifyReply, ctx: ApiContext): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  let last = '';
  const send = (): void => {
    const state = { rev: ctx.view.catalogRev, reports: ctx.ui.runtime.version, events: ctx.ui.events.version };
    const text = JSON.stringify(state);
    if (text === last) return;
    last = text;
    res.write(`event: change\ndata: ${text}\n\n`);
  };
  send();
  const poll = setInterval(send, STREAM_POLL_MS);
  const ping = setInterval(() => res.write(': ping\n\n'), STREAM_PING_MS);
  const end = (): void => {
    clearInterval(poll);
    clearInterval(ping);
    ctx.shutdown.removeEventListener('abort', end);
    if (!res.writableEnded) res.end();
  };
  request.raw.once('close', end);
  res.once('close', end);
  ctx.shutdown.addEventListener('abort', end, { once: true });
}

/** The UI's files, read once (dist/ui, made at build time), served from memory. */
function serveStatic(app: FastifyInstance): void {
  const root = path.resolve(__dirname, '../../../ui');
  const files = new Map<string, { body: Buffer; type: string }>();
  const types: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png', '.svg': 'image/svg+xml' };
  const walk = (dir: string, prefix: string): void => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full, `${prefix}${entry.name}/`);
      else files.set(`${prefix}${entry.name}`, { body: readFileSync(full), type: types[path.extname(entry.name)] ?? 'application/octet-stream' });
    }
  };
  walk(root, '');
  const send = (reply: FastifyReply, name: string): FastifyReply => {
    const file = files.get(name);
    if (file === undefined) return reply.status(404).send(new SwitchboardError('not_found', `no UI file ${name}`).toJSON());
    // The page's JS and CSS come from here only; nothing from elsewhere may run in it.
    reply.header('content-security-policy', "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'");
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', name === 'index.html' ? 'no-cache' : 'public, max-age=300');
    return reply.type(file.type).send(file.body);
  };
  app.get('/ui', (_request, reply) => reply.redirect('/ui/'));
  app.get('/ui/', (_request, reply) => send(reply, 'index.html'));
  app.get<{ Params: { '*': string } }>('/ui/*', (request, reply) => send(reply, request.params['*']));
}

