import { badRequest } from '../../errors';

/**
 * ACL rules, Consul's names and meaning (a subset): `service "<name>"` and
 * `service_prefix "<p>"`, `node_prefix`, `key_prefix`, each with `policy = "read|write|deny"`;
 * `agent "<node>"` / `agent_prefix`; and `acl = "write"` for management. Rules come as
 * Consul's HCL (the subset above) or as its JSON form (`{"service": {"web": {"policy": "write"}}}`).
 *
 * Deciding: an exact rule beats a prefix rule, a longer prefix beats a shorter one, and
 * without any rule the configured default policy decides (deny unless `acl.defaultPolicy`
 * says allow). `write` implies `read`.
 */

export type Access = 'deny' | 'read' | 'write';
type Resource = 'service' | 'node' | 'key' | 'agent';
const RESOURCES: readonly Resource[] = ['service', 'node', 'key', 'agent'];

export interface RuleSet {
  exact: Record<Resource, Map<string, Access>>;
  prefix: Record<Resource, Array<[string, Access]>>;
  acl?: Access;
}

export function emptyRules(): RuleSet {
  return {
    exact: { service: new Map(), node: new Map(), key: new Map(), agent: new Map() },
    prefix: { service: [], node: [], key: [], agent: [] },
  };
}

/** Parses HCL (the subset Consul policies use) or JSON rules; 400 naming `field` when neither. */
export function parseRules(text: string, field = 'Rules'): RuleSet {
  const rules = emptyRules();
  const trimmed = text.trim();
  if (trimmed === '') return rules;
  if (trimmed.startsWith('{')) return fromJson(trimmed, field);
  const block = /(service|node|key|agent)(_prefix)?\s+"([^"]*)"\s*\{\s*policy\s*=\s*"(read|write|deny)"\s*\}/y;
  const acl = /acl\s*=\s*"(read|write|deny)"/y;
  let at = skipSpace(trimmed, 0);
  while (at < trimmed.length) {
    block.lastIndex = at;
    acl.lastIndex = at;
    const b = block.exec(trimmed);
    if (b) {
      add(rules, b[1] as Resource, b[2] !== undefined, b[3], b[4] as Access);
      at = skipSpace(trimmed, block.lastIndex);
      continue;
    }
    const a = acl.exec(trimmed);
    if (a) {
      rules.acl = a[1] as Access;
      at = skipSpace(trimmed, acl.lastIndex);
      continue;
    }
    throw badRequest(field, `cannot read the rules at ${JSON.stringify(trimmed.slice(at, at + 40))}`);
  }
  return rules;
}

function skipSpace(text: string, at: number): number {
  let i = at;
  for (;;) {
    while (i < text.length && /\s/.test(text[i])) i++;
    if (text[i] === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    return i;
  }
}

function fromJson(text: string, field: string): RuleSet {
  const rules = emptyRules();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw badRequest(field, 'neither HCL nor JSON rules');
  }
  const root = parsed as Record<string, unknown>;
  for (const resource of RESOURCES) {
    for (const prefixed of [false, true]) {
      const entries = root[prefixed ? `${resource}_prefix` : resource];
      if (entries === undefined) continue;
      if (typeof entries !== 'object' || entries === null) throw badRequest(`${field}.${resource}`, 'must be an object');
      for (const [name, rule] of Object.entries(entries as Record<string, { policy?: unknown }>)) {
        const policy = rule?.policy;
        if (policy !== 'read' && policy !== 'write' && policy !== 'deny') throw badRequest(`${field}.${resource}.${name}`, 'policy must be read, write or deny');
        add(rules, resource, prefixed, name, policy);
      }
    }
  }
  if (root.acl !== undefined) {
    if (root.acl !== 'read' && root.acl !== 'write' && root.acl !== 'deny') throw badRequest(`${field}.acl`, 'must be read, write or deny');
    rules.acl = root.acl;
  }
  return rules;
}

function add(rules: RuleSet, resource: Resource, prefixed: boolean, name: string, access: Access): void {
  if (prefixed) {
    rules.prefix[resource].push([name, access]);
    rules.prefix[resource].sort((a, b) => b[0].length - a[0].length);
  } else {
    rules.exact[resource].set(name, access);
  }
}

/** Several policies on one token: the most permissive wins for each resource (Consul merges so). */
export function mergeRules(sets: readonly RuleSet[]): RuleSet {
  const merged = emptyRules();
  for (const set of sets) {
    for (const resource of RESOURCES) {
      for (const [name, access] of set.exact[resource]) merged.exact[resource].set(name, stronger(merged.exact[resource].get(name), access));
      for (const [name, access] of set.prefix[resource]) add(merged, resource, true, name, access);
    }
    if (set.acl !== undefined) merged.acl = stronger(merged.acl, set.acl);
  }
  return merged;
}

function stronger(a: Access | undefined, b: Access): Access {
  const rank: Record<Access, number> = { deny: 0, read: 1, write: 2 };
  return a === undefined || rank[b] > rank[a] ? b : a;
}

/** What one token may do. */
export class Authorizer {
  constructor(
    private readonly rules: RuleSet,
    private readonly fallback: Access,
  ) {}

  /** A token with `acl = "write"`: everything. */
  static management(): Authorizer {
    const rules = emptyRules();
    rules.acl = 'write';
    return new Authorizer(rules, 'write');
  }

  get isManagement(): boolean {
    return this.rules.acl === 'write';
  }

  serviceRead(name: string): boolean {
    return this.allows('service', name, 'read');
  }

  serviceWrite(name: string): boolean {
    return this.allows('service', name, 'write');
  }

  keyRead(key: string): boolean {
    return this.allows('key', key, 'read');
  }

  keyWrite(key: string): boolean {
    return this.allows('key', key, 'write');
  }

  nodeRead(node: string): boolean {
    return this.allows('node', node, 'read');
  }

  /** `agent "<node>" { policy = "write" }`: may act as the agent (script checks). */
  agentWrite(node: string): boolean {
    return this.allows('agent', node, 'write');
  }

  private allows(resource: Resource, name: string, wanted: Access): boolean {
    if (this.isManagement) return true;
    const access = this.rules.exact[resource].get(name) ?? this.rules.prefix[resource].find(([p]) => name.startsWith(p))?.[1] ?? this.fallback;
    return access === 'write' || (wanted === 'read' && access === 'read');
  }
}
