import type { RouteRule } from '../config/types';
import { SwitchboardError } from '../errors';

/**
 * The routing table: Host header and path → service. Pure (no I/O), rebuilt incrementally:
 * config rules are fixed at construction; a service's tag rules change only when
 * `setService` sees different tags for it.
 *
 * Resolution order:
 *   1. explicit host rules (config `host`, tags `urlprefix-host/path`), longest path first
 *   2. `<service>.<domain>` (port ignored, case-insensitive)
 *   3. prefix rules (config `prefix`, tags `urlprefix-/path`), longest match first, at
 *      path-segment boundaries: `/api` matches `/api`, `/api/x`, `/api?q`, not `/apix`
 *   4. implicit `/<service>/…` when pathRouting is on and the service exists
 * Every lookup is a handful of Map gets (at most one per path segment), whatever the
 * number of services.
 */

export interface Route {
  service: string;
  /** The request target to send upstream (rewritten when a prefix is stripped). */
  path: string;
}

export interface RouterOptions {
  domain: string;
  routes: readonly RouteRule[];
  pathRouting: boolean;
  stripServicePrefix: boolean;
}

/** A fabio-style `urlprefix-` tag: `urlprefix-/api`, `urlprefix-api.example.com/ strip=/v1`. */
export interface PrefixTag {
  /** Lower-cased host without port, or '' for any host. */
  host: string;
  prefix: string;
  strip: string | undefined;
}

interface Target {
  service: string;
  /** Path prefix to remove before forwarding. */
  strip: string | undefined;
}

/** Who claims a prefix; config rules outrank tags, then the smaller service name wins. */
interface Claim {
  owner: string;
  rank: number;
  target: Target;
}

const SLASH = 47;
const QUESTION = 63;
const TAG_PREFIX = 'urlprefix-';
const CONFIG_RANK = 0;
const TAG_RANK = 1;

export class Router {
  private readonly dotDomain: string;
  private readonly pathRouting: boolean;
  private readonly stripServicePrefix: boolean;
  private readonly hostTables = new Map<string, PrefixTable>();
  private readonly prefixTable = new PrefixTable();
  /** Lower-cased name → catalog name, for Host matching. */
  private readonly servicesByHost = new Map<string, string>();
  private readonly services = new Set<string>();
  private readonly tagRules = new Map<string, PrefixTag[]>();

  constructor(options: RouterOptions) {
    this.dotDomain = options.domain ? `.${trimDot(options.domain.toLowerCase())}` : '';
    this.pathRouting = options.pathRouting;
    this.stripServicePrefix = options.stripServicePrefix;
    options.routes.forEach((rule, i) => this.addConfigRule(rule, i));
  }

  /** The service is in the catalog, with these tags (the union over its instances). */
  setService(name: string, tags: readonly string[]): void {
    if (!this.services.has(name)) {
      this.services.add(name);
      this.servicesByHost.set(name.toLowerCase(), name);
    }
    const next = parsePrefixTags(tags);
    const previous = this.tagRules.get(name) ?? [];
    if (samePrefixTags(previous, next)) return;
    for (const rule of previous) this.tableFor(rule.host).remove(rule.prefix, tagOwner(name));
    for (const rule of next) {
      const claim = { owner: tagOwner(name), rank: TAG_RANK, target: { service: name, strip: rule.strip } };
      this.tableFor(rule.host).add(rule.prefix, claim);
    }
    if (next.length === 0) this.tagRules.delete(name);
    else this.tagRules.set(name, next);
  }

  removeService(name: string): void {
    this.setService(name, []);
    this.services.delete(name);
    if (this.servicesByHost.get(name.toLowerCase()) === name) this.servicesByHost.delete(name.toLowerCase());
  }

  hasService(name: string): boolean {
    return this.services.has(name);
  }

  route(hostHeader: string | undefined, url: string): Route | undefined {
    const host = normalizeHost(hostHeader);
    const end = pathEnd(url);
    if (host !== '') {
      const table = this.hostTables.get(host);
      const target = table?.match(url, end);
      if (target) return toRoute(target, url);
      const service = this.serviceFromHost(host);
      if (service !== undefined) return { service, path: url };
    }
    const target = this.prefixTable.match(url, end);
    if (target) return toRoute(target, url);
    return this.pathRouting ? this.implicitRoute(url, end) : undefined;
  }

  private serviceFromHost(host: string): string | undefined {
    const suffix = this.dotDomain;
    if (suffix === '' || host.length <= suffix.length || !host.endsWith(suffix)) return undefined;
    return this.servicesByHost.get(host.slice(0, host.length - suffix.length));
  }

  private implicitRoute(url: string, end: number): Route | undefined {
    if (url.charCodeAt(0) !== SLASH) return undefined;
    let segmentEnd = url.indexOf('/', 1);
    if (segmentEnd < 0 || segmentEnd > end) segmentEnd = end;
    const service = url.slice(1, segmentEnd);
    if (!this.services.has(service)) return undefined;
    return { service, path: this.stripServicePrefix ? stripPrefix(url, url.slice(0, segmentEnd)) : url };
  }

  private addConfigRule(rule: RouteRule, index: number): void {
    const hasHost = typeof rule.host === 'string' && rule.host !== '';
    const hasPrefix = typeof rule.prefix === 'string' && rule.prefix !== '';
    if (hasHost === hasPrefix || !rule.service) {
      throw new SwitchboardError('config_invalid', 'a route needs a service and exactly one of host or prefix', {
        field: `proxy.routes[${index}]`,
      });
    }
    const owner = `config:${index}`;
    if (hasHost) {
      const claim = { owner, rank: CONFIG_RANK, target: { service: rule.service, strip: undefined } };
      this.tableFor(normalizeHost(rule.host)).add('/', claim);
      return;
    }
    const prefix = normalizePrefix(rule.prefix as string);
    if (prefix === undefined) {
      throw new SwitchboardError('config_invalid', 'a route prefix must start with "/"', {
        field: `proxy.routes[${index}].prefix`,
      });
    }
    const strip = rule.strip && prefix !== '/' ? prefix : undefined;
    this.prefixTable.add(prefix, { owner, rank: CONFIG_RANK, target: { service: rule.service, strip } });
  }

  private tableFor(host: string): PrefixTable {
    if (host === '') return this.prefixTable;
    let table = this.hostTables.get(host);
    if (!table) {
      table = new PrefixTable();
      this.hostTables.set(host, table);
    }
    return table;
  }
}

/** Path prefixes of one scope (one host, or any host), with the claims behind each. */
class PrefixTable {
  private readonly claims = new Map<string, Claim[]>();
  private readonly winners = new Map<string, Target>();
  /** Longest prefix ever added: lookups never slice a path beyond it. */
  private longest = 0;

  add(prefix: string, claim: Claim): void {
    const claims = (this.claims.get(prefix) ?? []).filter((c) => c.owner !== claim.owner);
    claims.push(claim);
    this.settle(prefix, claims);
    if (prefix.length > this.longest) this.longest = prefix.length;
  }

  remove(prefix: string, owner: string): void {
    const claims = this.claims.get(prefix);
    if (claims) this.settle(prefix, claims.filter((c) => c.owner !== owner));
  }

  /** Longest prefix of `path[0, end)` that ends at a segment boundary. */
  match(path: string, end: number): Target | undefined {
    if (this.winners.size === 0) return undefined;
    for (let i = Math.min(end, this.longest); i > 1; i--) {
      if (i !== end && path.charCodeAt(i) !== SLASH) continue;
      const target = this.winners.get(path.slice(0, i));
      if (target) return target;
    }
    return this.winners.get('/');
  }

  private settle(prefix: string, claims: Claim[]): void {
    if (claims.length === 0) {
      this.claims.delete(prefix);
      this.winners.delete(prefix);
      return;
    }
    claims.sort((a, b) => a.rank - b.rank || compare(a.target.service, b.target.service));
    this.claims.set(prefix, claims);
    this.winners.set(prefix, claims[0].target);
  }
}

/** Parses the `urlprefix-` tags among `tags`; anything malformed is skipped. */
export function parsePrefixTags(tags: readonly string[]): PrefixTag[] {
  const rules: PrefixTag[] = [];
  const seen = new Set<string>();
  for (const tag of tags) {
    const rule = parsePrefixTag(tag);
    if (!rule) continue;
    const key = `${rule.host}\n${rule.prefix}\n${rule.strip ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    rules.push(rule);
  }
  return rules.sort((a, b) => compare(a.host, b.host) || compare(a.prefix, b.prefix) || compare(a.strip ?? '', b.strip ?? ''));
}

export function parsePrefixTag(tag: string): PrefixTag | undefined {
  if (!tag.startsWith(TAG_PREFIX)) return undefined;
  const [spec, ...options] = tag.slice(TAG_PREFIX.length).trim().split(/\s+/);
  const slash = spec.indexOf('/');
  if (slash < 0) return undefined;
  const prefix = normalizePrefix(spec.slice(slash));
  if (prefix === undefined) return undefined;
  let strip: string | undefined;
  for (const option of options) {
    if (!option.startsWith('strip=')) continue;
    strip = normalizePrefix(option.slice('strip='.length));
    if (strip === '/') strip = undefined;
  }
  return { host: normalizeHost(spec.slice(0, slash)), prefix, strip };
}

function samePrefixTags(a: readonly PrefixTag[], b: readonly PrefixTag[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((r, i) => r.host === b[i].host && r.prefix === b[i].prefix && r.strip === b[i].strip);
}

function toRoute(target: Target, url: string): Route {
  return { service: target.service, path: target.strip === undefined ? url : stripPrefix(url, target.strip) };
}

/** Removes `prefix` when it ends at a segment boundary of `url`; the result starts with `/`. */
export function stripPrefix(url: string, prefix: string): string {
  if (!url.startsWith(prefix)) return url;
  if (url.length === prefix.length) return '/';
  const next = url.charCodeAt(prefix.length);
  if (next === SLASH) return url.slice(prefix.length);
  if (next === QUESTION) return `/${url.slice(prefix.length)}`;
  return url;
}

/** Lower-cased host without port or trailing dot; '' when absent. */
export function normalizeHost(host: string | undefined): string {
  if (!host) return '';
  let end = host.length;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf(']');
    if (close > 0) end = close + 1;
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) end = colon;
  }
  if (host.charCodeAt(end - 1) === 46 /* . */) end--;
  return (end === host.length ? host : host.slice(0, end)).toLowerCase();
}

/** `/api/` → `/api`; undefined unless it starts with `/`. */
function normalizePrefix(prefix: string): string | undefined {
  if (prefix.charCodeAt(0) !== SLASH) return undefined;
  let end = prefix.length;
  while (end > 1 && prefix.charCodeAt(end - 1) === SLASH) end--;
  return prefix.slice(0, end);
}

function pathEnd(url: string): number {
  const query = url.indexOf('?');
  return query < 0 ? url.length : query;
}

function trimDot(name: string): string {
  return name.replace(/^\.+|\.+$/g, '');
}

function tagOwner(service: string): string {
  return `tag:${service}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
