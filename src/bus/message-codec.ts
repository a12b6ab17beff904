import { createHmac, timingSafeEqual } from 'node:crypto';
import { checkedInstance } from '../catalog/instance-shape';
import type { CatalogMessage, InstanceChange } from './bus';

/**
 * Catalog messages as text on a shared bus (Redis), where anyone who can publish may have
 * written one: everything is validated, and routing data is believed only when signed.
 *
 * Without a key: the message's JSON. A receiver takes the revision chain and the service names
 * from it — at worst a forged one makes proxies fetch — and never its `changes`.
 * With a key shared by registries and proxies: `{"v":1,"body":"<message JSON>","sig":"<hex
 * HMAC-SHA256 of body>"}`. A receiver with the key believes `changes` only in a body whose
 * signature checks, and drops a message whose signature does not. The signature covers the
 * exact text, so nothing depends on how JSON is re-serialised. A replayed message is harmless:
 * its revision is one the proxy already has.
 */

/** What became of a received message (metrics label). */
export type Verdict = 'signed' | 'unsigned' | 'bad_signature' | 'malformed';

export interface Decoded {
  verdict: Verdict;
  /** Absent for bad_signature and malformed. */
  message?: CatalogMessage;
  /** The message had changes that were not believed (unsigned, or not valid): it is names only. */
  changesIgnored?: 'unverified' | 'malformed';
}

/** A message of more changes than this is not ours (the publisher sends names only past 64 KiB). */
const MAX_CHANGES = 10_000;

export function encodeMessage(message: CatalogMessage, key: string): string {
  const body = JSON.stringify(message);
  if (key === '') return body;
  return JSON.stringify({ v: 1, body, sig: sign(body, key) });
}

export function decodeMessage(raw: string, key: string): Decoded {
  const value = parseJson(raw);
  if (isEnvelope(value)) {
    if (key !== '' && !verified(value.body, value.sig, key)) return { verdict: 'bad_signature' };
    return fromBody(parseJson(value.body), key !== '' ? 'signed' : 'unsigned');
  }
  return fromBody(value, 'unsigned');
}

function fromBody(value: unknown, verdict: 'signed' | 'unsigned'): Decoded {
  const message = parseMessage(value);
  if (message === undefined) return { verdict: 'malformed' };
  const changes = (value as { changes?: unknown }).changes;
  if (changes === undefined) return { verdict, message };
  if (verdict !== 'signed') return { verdict, message, changesIgnored: 'unverified' };
  const checked = parseChanges(changes, message.services);
  if (checked === undefined) return { verdict, message, changesIgnored: 'malformed' };
  return { verdict, message: { ...message, changes: checked } };
}

/** Revisions are non-negative integers with prevRev ≤ rev; services are strings. */
function parseMessage(value: unknown): CatalogMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { rev, prevRev, services } = value as Record<string, unknown>;
  if (!isRevision(rev) || !isRevision(prevRev) || prevRev > rev) return undefined;
  if (!Array.isArray(services) || !services.every((s) => typeof s === 'string')) return undefined;
  return { rev, prevRev, services: [...services] as string[] };
}

/**
 * Every change well-formed, each record's id its change's, and every service it touches
 * named by the message (what a fetch would re-read is exactly what the changes rewrite).
 */
function parseChanges(value: unknown, services: readonly string[]): InstanceChange[] | undefined {
  if (!Array.isArray(value) || value.length > MAX_CHANGES) return undefined;
  const named = new Set(services);
  const out: InstanceChange[] = [];
  for (const item of value) {
    if (typeof item !== 'object' || item === null) return undefined;
    const { id, from, to } = item as Record<string, unknown>;
    if (typeof id !== 'string' || id === '') return undefined;
    if (from !== undefined && (typeof from !== 'string' || !named.has(from))) return undefined;
    const record = to === undefined ? undefined : checkedInstance(to);
    if (to !== undefined && (record === undefined || record.id !== id || !named.has(record.service))) return undefined;
    out.push({ id, ...(from !== undefined ? { from } : {}), ...(record !== undefined ? { to: record } : {}) });
  }
  return out;
}

function isEnvelope(value: unknown): value is { v: 1; body: string; sig: string } {
  if (typeof value !== 'object' || value === null) return false;
  const { v, body, sig } = value as Record<string, unknown>;
  return v === 1 && typeof body === 'string' && typeof sig === 'string';
}

function sign(body: string, key: string): string {
  return createHmac('sha256', key).update(body).digest('hex');
}

function verified(body: string, sig: string, key: string): boolean {
  const expected = Buffer.from(sign(body, key), 'hex');
  const given = /^[0-9a-f]{64}$/.test(sig) ? Buffer.from(sig, 'hex') : undefined;
  return given !== undefined && timingSafeEqual(expected, given);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRevision(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
