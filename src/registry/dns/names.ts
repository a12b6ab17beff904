import { isIP } from 'node:net';

/**
 * What a DNS question's name asks for, in Consul's forms (matched case-insensitively, the
 * trailing dot optional), under any of the served domains:
 *
 *   <service>.service[.<dc>].<domain>            instances of a service
 *   <tag>.<service>.service[.<dc>].<domain>      … carrying that tag
 *   _<service>._<tag|tcp>.service[.<dc>].<domain>  RFC 2782 form (`_tcp`: no tag filter)
 *   <node>.node[.<dc>].<domain>                  a node's address
 *   <hex>.addr[.<dc>].<domain>                   the address spelled in hex (8 or 32 digits)
 *   <domain>                                     the zone apex (SOA, NS)
 *
 * Anything else under a served domain is `unknown` (NXDOMAIN); a name outside them is
 * `foreign` (recursors, or REFUSED). A datacenter label other than ours is `unknown` too:
 * we answer for one datacenter, and never pretend to know another's instances.
 */
export type QueryName =
  | { kind: 'service'; service: string; tag?: string; domain: string }
  | { kind: 'node'; node: string; domain: string }
  | { kind: 'addr'; address: string; domain: string }
  | { kind: 'apex'; domain: string }
  | { kind: 'unknown'; domain: string }
  | { kind: 'foreign' };

export interface NameRules {
  /** Served domains, lower case, without dots at either end (e.g. `consul`). */
  domains: readonly string[];
  datacenter: string;
}

export function parseQueryName(name: string, rules: NameRules): QueryName {
  const lower = name.toLowerCase().replace(/\.$/, '');
  const domain = rules.domains.find((d) => lower === d || lower.endsWith(`.${d}`));
  if (domain === undefined) return { kind: 'foreign' };
  if (lower === domain) return { kind: 'apex', domain };
  const labels = lower.slice(0, lower.length - domain.length - 1).split('.');
  const unknown: QueryName = { kind: 'unknown', domain };
  // An optional datacenter label after the query type: ours, or nothing is known there.
  let typeAt = labels.length - 1;
  if (labels.length >= 2 && !isQueryType(labels[typeAt])) {
    if (labels[typeAt] !== rules.datacenter || !isQueryType(labels[typeAt - 1])) return unknown;
    typeAt--;
  }
  const type = labels[typeAt];
  const parts = labels.slice(0, typeAt);
  if (parts.length === 0 || parts.some((p) => p === '')) return unknown;
  switch (type) {
    case 'service':
      return serviceQuery(parts, domain) ?? unknown;
    case 'node':
      return parts.length === 1 ? { kind: 'node', node: parts[0], domain } : unknown;
    case 'addr': {
      const address = parts.length === 1 ? hexAddress(parts[0]) : undefined;
      return address === undefined ? unknown : { kind: 'addr', address, domain };
    }
    default:
      return unknown;
  }
}

function isQueryType(label: string | undefined): boolean {
  return label === 'service' || label === 'node' || label === 'addr';
}

function serviceQuery(parts: string[], domain: string): QueryName | undefined {
  if (parts.length === 2 && parts[0].startsWith('_') && parts[1].startsWith('_')) {
    const service = parts[0].slice(1);
    const tag = parts[1].slice(1);
    if (service === '' || tag === '') return undefined;
    return tag === 'tcp' ? { kind: 'service', service, domain } : { kind: 'service', service, tag, domain };
  }
  if (parts.length === 1) return { kind: 'service', service: parts[0], domain };
  if (parts.length === 2) return { kind: 'service', service: parts[1], tag: parts[0], domain };
  return undefined;
}

/** `7f000001` → 127.0.0.1; 32 hex digits → an IPv6 address; anything else undefined. */
export function hexAddress(label: string): string | undefined {
  if (!/^[0-9a-f]+$/.test(label)) return undefined;
  if (label.length === 8) return [0, 2, 4, 6].map((i) => parseInt(label.slice(i, i + 2), 16)).join('.');
  if (label.length === 32) {
    const groups = Array.from({ length: 8 }, (_, i) => label.slice(i * 4, i * 4 + 4));
    return groups.join(':');
  }
  return undefined;
}

/** 127.0.0.1 → `7f000001`; an IPv6 address → its 32 hex digits (Consul's `.addr.` labels). */
export function addressHex(address: string): string | undefined {
  const family = isIP(address);
  if (family === 4) return address.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('');
  if (family === 6) return Buffer.from(ipv6Bytes(address)).toString('hex');
  return undefined;
}

/** The 16 bytes of an IPv6 address (with `::` expanded, an embedded IPv4 tail allowed). */
function ipv6Bytes(address: string): number[] {
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const octets = v4[1].split('.').map(Number);
    text = `${text.slice(0, v4.index)}${((octets[0] << 8) | octets[1]).toString(16)}:${((octets[2] << 8) | octets[3]).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups];
  return groups.flatMap((g) => {
    const value = parseInt(g, 16);
    return [value >> 8, value & 0xff];
  });
}
