import { SwitchboardError } from '../../errors';
import type { PickRequest } from './balancer';

/** What a hash policy hashes, parsed once from `header:<name>`, `cookie:<name>` or `ip`. */
export type HashKey = { kind: 'ip' } | { kind: 'header'; name: string } | { kind: 'cookie'; name: string };

export function parseHashKey(text: string): HashKey {
  if (text === 'ip') return { kind: 'ip' };
  const colon = text.indexOf(':');
  const kind = text.slice(0, colon);
  const name = text.slice(colon + 1);
  if (colon > 0 && name.length > 0 && (kind === 'header' || kind === 'cookie')) {
    // Node lower-cases incoming header names; cookie names are case-sensitive.
    return kind === 'header' ? { kind, name: name.toLowerCase() } : { kind, name };
  }
  throw new SwitchboardError('config_invalid', `hash key "${text}": must be "ip", "header:<name>" or "cookie:<name>"`, {
    field: 'hashKey',
  });
}

/** The request's key, or undefined when it has none (no such header or cookie). */
export function requestKey(key: HashKey, request: PickRequest): string | undefined {
  switch (key.kind) {
    case 'ip':
      return request.socket?.remoteAddress;
    case 'header': {
      const value = request.headers[key.name];
      return Array.isArray(value) ? value[0] : value;
    }
    case 'cookie': {
      const header = request.headers.cookie;
      return header === undefined ? undefined : cookieValue(header, key.name);
    }
  }
}

/** Finds `name=value` in a Cookie header without splitting it into pieces. */
export function cookieValue(header: string, name: string): string | undefined {
  let from = 0;
  while (from < header.length) {
    const at = header.indexOf(name, from);
    if (at < 0) return undefined;
    const end = at + name.length;
    if (header.charCodeAt(end) === 61 /* = */ && startsPair(header, at)) {
      const semicolon = header.indexOf(';', end + 1);
      return header.slice(end + 1, semicolon < 0 ? header.length : semicolon).trim();
    }
    from = at + 1;
  }
  return undefined;
}

/** `name` starts a pair: at the beginning or after `;` and optional spaces. */
function startsPair(header: string, at: number): boolean {
  let i = at - 1;
  while (i >= 0 && header.charCodeAt(i) === 32) i--;
  return i < 0 || header.charCodeAt(i) === 59; /* ; */
}

/**
 * MurmurHash3 (x86, 32 bit) over the string's UTF-16 code units, two per block. Fast, and
 * mixes well enough that ring points and keys spread evenly over the 32-bit circle.
 */
export function murmur3(text: string, seed = 0): number {
  let h = seed | 0;
  const length = text.length;
  let i = 0;
  for (; i + 1 < length; i += 2) {
    h ^= scramble((text.charCodeAt(i) & 0xffff) | ((text.charCodeAt(i + 1) & 0xffff) << 16));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < length) h ^= scramble(text.charCodeAt(i) & 0xffff);
  h ^= length * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function scramble(k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, 0x1b873593);
}
