import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { SwitchboardError, badRequest } from '../../errors';
import type { Logger } from '../../log';
import type { KeyValue, Store, Watcher } from '../store/store';
import { Authorizer, mergeRules, parseRules, type Access, type RuleSet } from './rules';

/**
 * ACL tokens and policies, kept in the registry's store (embedded journal or etcd) beside the
 * catalog, so every registry process of a cluster sees the same ones. Secrets are stored only
 * as SHA-256 hashes; a presented secret is hashed and looked up by its hash, and the
 * configured initial management token is compared in constant time.
 */

const TOKEN_PREFIX = 'acl/tokens/';
const POLICY_PREFIX = 'acl/policies/';
const BOOTSTRAP_KEY = 'acl/bootstrap';

interface TokenRecord {
  accessorId: string;
  secretHash: string;
  description: string;
  policies: string[];
  serviceIdentities: string[];
  management: boolean;
  createIndex?: number;
}

interface PolicyRecord {
  id: string;
  name: string;
  description: string;
  rules: string;
}

export interface AclSettings {
  defaultPolicy: 'allow' | 'deny';
  /** Consul's initial_management: a management token known from the configuration. */
  initialManagement?: string;
  /** Policies and tokens from the configuration: in memory only, never stored. */
  policies?: ReadonlyArray<{ name: string; rules: string; description: string }>;
  staticTokens?: ReadonlyArray<{ secret: string; description: string; policies: readonly string[]; serviceIdentities: readonly string[] }>;
}

export class AclStore {
  private readonly tokensByHash = new Map<string, TokenRecord>();
  private readonly tokensByAccessor = new Map<string, TokenRecord>();
  private readonly policies = new Map<string, PolicyRecord>();
  private readonly parsed = new Map<string, RuleSet>();
  private readonly fallback: Access;
  private readonly initialHash: Buffer | undefined;
  private watcher: Watcher | undefined;

  constructor(
    private readonly store: Store,
    private readonly settings: AclSettings,
    private readonly logger: Logger,
  ) {
    this.fallback = settings.defaultPolicy === 'allow' ? 'write' : 'deny';
    this.initialHash = settings.initialManagement ? hashBuffer(settings.initialManagement) : undefined;
    // Checked now: a configured policy with rules we cannot read is a configuration error.
    for (const policy of settings.policies ?? []) parseRules(policy.rules, `acl.policies.${policy.name}.rules`);
  }

  async start(): Promise<void> {
    const { rev, kvs } = await this.store.range('acl/');
    this.reload(kvs);
    this.follow(rev);
  }

  /** The configuration's policies and tokens, indexed like stored ones (after every reload). */
  private addStatic(): void {
    for (const policy of this.settings.policies ?? []) this.indexPolicy({ id: `static:${policy.name}`, name: policy.name, description: policy.description, rules: policy.rules });
    for (const [i, token] of (this.settings.staticTokens ?? []).entries()) {
      const policies = token.policies.map((name) => [...this.policies.values()].find((p) => p.name === name)?.id ?? `missing:${name}`);
      this.index({ accessorId: `static:${i}`, secretHash: hashHex(token.secret), description: token.description, policies, serviceIdentities: [...token.serviceIdentities], management: false });
    }
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** What a request with this secret may do; undefined secret = the anonymous token. */
  authorizerFor(secret: string | undefined): Authorizer {
    if (secret === undefined || secret === '') return new Authorizer(mergeRules([]), this.fallback);
    const hash = hashBuffer(secret);
    if (this.initialHash !== undefined && timingSafeEqual(hash, this.initialHash)) return Authorizer.management();
    const token = this.tokensByHash.get(hash.toString('hex'));
    if (token === undefined) throw new SwitchboardError('forbidden', 'ACL not found');
    if (token.management) return Authorizer.management();
    const sets = token.policies.flatMap((id) => (this.parsed.has(id) ? [this.parsed.get(id) as RuleSet] : []));
    for (const name of token.serviceIdentities) sets.push(parseRules(`service "${name}" { policy = "write" }\nservice_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }`));
    return new Authorizer(mergeRules(sets), this.fallback);
  }

  /** PUT /v1/acl/bootstrap: one management token, once per cluster. */
  async bootstrap(): Promise<{ token: TokenRecord; secret: string }> {
    const secret = randomUUID();
    const token: TokenRecord = { accessorId: randomUUID(), secretHash: hashHex(secret), description: 'Bootstrap Token (Global Management)', policies: [], serviceIdentities: [], management: true };
    const result = await this.store.txn(
      [{ key: BOOTSTRAP_KEY, modRev: 0 }],
      [
        { kind: 'put', key: BOOTSTRAP_KEY, value: JSON.stringify({ accessorId: token.accessorId }) },
        { kind: 'put', key: TOKEN_PREFIX + token.accessorId, value: JSON.stringify(token) },
      ],
    );
    if (!result.ok) throw new SwitchboardError('forbidden', 'ACL bootstrap no longer allowed');
    this.index(token);
    return { token, secret };
  }

  async createPolicy(name: string, rules: string, description: string): Promise<PolicyRecord> {
    parseRules(rules);
    if ([...this.policies.values()].some((p) => p.name === name)) throw badRequest('Name', `a policy named ${JSON.stringify(name)} exists`);
    const policy: PolicyRecord = { id: randomUUID(), name, description, rules };
    await this.store.txn([], [{ kind: 'put', key: POLICY_PREFIX + policy.id, value: JSON.stringify(policy) }]);
    this.indexPolicy(policy);
    return policy;
  }

  async createToken(input: { description: string; policies: Array<{ ID?: string; Name?: string }>; serviceIdentities: string[] }): Promise<{ token: TokenRecord; secret: string }> {
    const policies = input.policies.map((ref, i) => {
      const found = ref.ID !== undefined ? this.policies.get(ref.ID) : [...this.policies.values()].find((p) => p.name === ref.Name);
      if (found === undefined) throw badRequest(`Policies[${i}]`, `no policy ${JSON.stringify(ref.ID ?? ref.Name)}`);
      return found.id;
    });
    const secret = randomUUID();
    const token: TokenRecord = { accessorId: randomUUID(), secretHash: hashHex(secret), description: input.description, policies, serviceIdentities: input.serviceIdentities, management: false };
    await this.store.txn([], [{ kind: 'put', key: TOKEN_PREFIX + token.accessorId, value: JSON.stringify(token) }]);
    this.index(token);
    return { token, secret };
  }

  async deleteToken(accessorId: string): Promise<boolean> {
    if (!this.tokensByAccessor.has(accessorId) || accessorId.startsWith('static:')) return false;
    await this.store.txn([], [{ kind: 'delete', key: TOKEN_PREFIX + accessorId }]);
    this.unindex(accessorId);
    return true;
  }

  tokenBySecret(secret: string): TokenRecord | undefined {
    return this.tokensByHash.get(hashHex(secret));
  }

  policyName(id: string): string | undefined {
    return this.policies.get(id)?.name;
  }

  // ---- following the store (other registry processes write too) ----------------------

  private follow(afterRev: number): void {
    this.watcher = this.store.watch('acl/', afterRev, {
      onBatch: (batch) => {
        for (const event of batch.events) {
          if (event.type === 'put' && event.value !== undefined) this.apply({ key: event.key, value: event.value, createRev: event.createRev, modRev: event.modRev });
          else if (event.key.startsWith(TOKEN_PREFIX)) this.unindex(event.key.slice(TOKEN_PREFIX.length));
          else if (event.key.startsWith(POLICY_PREFIX)) this.unindexPolicy(event.key.slice(POLICY_PREFIX.length));
        }
      },
      onCompacted: () => {
        this.watcher?.close();
        void this.start().catch((err: unknown) => this.logger.error({ err }, 'ACL records could not be re-read after a compaction'));
      },
    });
  }

  private reload(kvs: readonly KeyValue[]): void {
    this.tokensByHash.clear();
    this.tokensByAccessor.clear();
    this.policies.clear();
    this.parsed.clear();
    for (const kv of kvs) this.apply(kv);
    this.addStatic();
  }

  private apply(kv: KeyValue): void {
    try {
      if (kv.key.startsWith(TOKEN_PREFIX)) this.index(JSON.parse(kv.value) as TokenRecord);
      else if (kv.key.startsWith(POLICY_PREFIX)) this.indexPolicy(JSON.parse(kv.value) as PolicyRecord);
    } catch (err) {
      this.logger.error({ err, key: kv.key }, 'unreadable ACL record skipped');
    }
  }

  private index(token: TokenRecord): void {
    this.unindex(token.accessorId);
    this.tokensByAccessor.set(token.accessorId, token);
    this.tokensByHash.set(token.secretHash, token);
  }

  private unindex(accessorId: string): void {
    const old = this.tokensByAccessor.get(accessorId);
    if (old === undefined) return;
    this.tokensByAccessor.delete(accessorId);
    this.tokensByHash.delete(old.secretHash);
  }

  private indexPolicy(policy: PolicyRecord): void {
    this.policies.set(policy.id, policy);
    this.parsed.set(policy.id, parseRules(policy.rules));
  }

  private unindexPolicy(id: string): void {
    this.policies.delete(id);
    this.parsed.delete(id);
  }
}

function hashBuffer(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

function hashHex(secret: string): string {
  return hashBuffer(secret).toString('hex');
}
