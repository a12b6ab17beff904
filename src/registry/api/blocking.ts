import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseDuration } from '../../config/duration';
import { SwitchboardError, badRequest } from '../../errors';
import type { ApiContext } from './context';
import { optionalString, parseRevision } from './validation';

/**
 * Consul blocking queries: `?index=N&wait=D` parks a read until the index it reports moves
 * past N, the wait (plus up to wait/16 jitter, so clients don't wake in lockstep) elapses,
 * the client goes away, or the server shuts down. Every read then carries X-Consul-* headers.
 */

const DEFAULT_WAIT_MS = 5 * 60_000;

export interface BlockingQuery {
  /** 0 = don't block. */
  index: number;
  waitMs: number;
}

export function parseBlockingQuery(query: Record<string, unknown>, maxWaitMs: number): BlockingQuery {
  const index = parseRevision(query.index, 'index') ?? 0;
  const waitText = optionalString(query.wait, 'wait');
  let waitMs = DEFAULT_WAIT_MS;
  if (waitText !== undefined && waitText !== '') {
    const parsed = parseDuration(waitText);
    if (parsed === undefined) throw badRequest('wait', `not a duration: ${JSON.stringify(waitText)} (use e.g. "30s")`);
    if (parsed > 0) waitMs = parsed;
  }
  return { index, waitMs: Math.min(waitMs, maxWaitMs) };
}

/**
 * Parse the query, wait if asked, then set the headers for the index of `service` (or the
 * catalog's when undefined). The caller builds its body after this returns.
 */
export async function blockingRead(
  ctx: ApiContext,
  request: FastifyRequest,
  reply: FastifyReply,
  service: string | undefined,
): Promise<void> {
  const { index, waitMs } = parseBlockingQuery(request.query as Record<string, unknown>, ctx.maxWaitMs);
  if (index > 0) {
    const jitter = Math.floor(Math.random() * (waitMs / 16));
    await withCancellation(reply, ctx.shutdown, (signal) => ctx.view.waitForChange(index, service, waitMs + jitter, signal));
  }
  setConsulHeaders(ctx, reply, ctx.view.indexFor(service));
}

export function setConsulHeaders(ctx: ApiContext, reply: FastifyReply, index: number): void {
  reply.header('X-Consul-Index', String(Math.max(1, index)));
  // Reads are served from memory even while the store is unreachable (static stability);
  // like Consul's stale reads they say so, with KnownLeader false.
  const knownLeader = ctx.election.leader() !== '' && (ctx.storeHealthy?.() ?? true);
  reply.header('X-Consul-KnownLeader', knownLeader ? 'true' : 'false');
  reply.header('X-Consul-LastContact', '0');
}

/** Runs `wait` with a signal that aborts when the client disconnects or the server shuts down. */
export async function withCancellation<T>(reply: FastifyReply, shutdown: AbortSignal, wait: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  // The response's 'close' before we answered means the client went away.
  reply.raw.once('close', abort);
  shutdown.addEventListener('abort', abort, { once: true });
  if (shutdown.aborted) controller.abort();
  try {
    return await wait(controller.signal);
  } finally {
    reply.raw.removeListener('close', abort);
    shutdown.removeEventListener('abort', abort);
  }
}

/** Read-your-writes: a write is answered only once this process's view includes it. */
export async function awaitVisible(ctx: ApiContext, rev: number): Promise<void> {
  if (await ctx.view.waitForRev(rev)) return;
  throw new SwitchboardError('store_unavailable', `the write committed at revision ${rev} but this registry has not seen it yet`);
}
