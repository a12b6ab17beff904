import { isIP } from 'node:net';
import type { Answer, RecordType } from 'dns-packet';
import { effectiveWeight, instanceHealth, type Instance } from '../../catalog/model';
import { addressHex, type QueryName } from './names';

/**
 * The answer to one question, from the catalog as this registry sees it. Consul's rules, with
 * its users' complaints fixed: non-zero TTLs, instances in a fresh weighted-random order per
 * query (a resolver that takes the first address spreads load by Weights), and RFC 2308
 * negative answers (an SOA whose minimum is the negative-caching TTL):
 *  - a name we do not know, or a service with no instance to offer → NXDOMAIN;
 *  - a name we know without records of the asked type → NOERROR with no answer (NODATA).
 */

/** What a question may ask for: a record type, or ANY (answered with the addresses). */
export type QueryType = RecordType | 'ANY';

export interface DnsAnswerConfig {
  /** Seconds. */
  serviceTtl: number;
  nodeTtl: number;
  negativeTtl: number;
  /** Leave warning instances out (Consul's `only_passing`). */
  onlyPassing: boolean;
  datacenter: string;
}

export interface CatalogReader {
  serviceInstances(service: string): readonly Instance[];
  /** For the SOA serial. */
  readonly rev: number;
}

export interface Node {
  name: string;
  /** An IP address, or '' when the node has none to give. */
  address: string;
}

export type ResponseCode = 'NOERROR' | 'NXDOMAIN';

export interface BuiltAnswer {
  rcode: ResponseCode;
  answers: Answer[];
  authorities: Answer[];
  /** Addresses of SRV targets. */
  additionals: Answer[];
}

export function buildAnswer(
  question: { name: string; type: QueryType },
  query: Exclude<QueryName, { kind: 'foreign' }>,
  catalog: CatalogReader,
  node: Node,
  config: DnsAnswerConfig,
  random: () => number = Math.random,
): BuiltAnswer {
  const negative = (rcode: ResponseCode): BuiltAnswer => ({ rcode, answers: [], authorities: [soa(query.domain, catalog.rev, config)], additionals: [] });
  const records = (answers: Answer[], additionals: Answer[] = []): BuiltAnswer =>
    answers.length === 0 ? negative('NOERROR') : { rcode: 'NOERROR', answers, authorities: [], additionals };
  switch (query.kind) {
    case 'unknown':
      return negative('NXDOMAIN');
    case 'apex':
      if (question.type === 'SOA') return records([soa(query.domain, catalog.rev, config)]);
      if (question.type === 'NS') return records([{ name: query.domain, type: 'NS', class: 'IN', ttl: config.nodeTtl, data: `ns.${query.domain}` }]);
      return negative('NOERROR');
    case 'addr':
      return records(addressRecords(question.name, question.type, [query.address], config.nodeTtl));
    case 'node':
      if (query.node !== node.name.toLowerCase()) return negative('NXDOMAIN');
      return records(addressRecords(question.name, question.type, node.address === '' ? [] : [node.address], config.nodeTtl));
    case 'service': {
      const offered = weightedShuffle(eligibleInstances(catalog.serviceInstances(query.service), query.tag, config.onlyPassing), random);
      if (offered.length === 0) return negative('NXDOMAIN');
      if (question.type === 'SRV') return srvRecords(question.name, offered, query.domain, config);
      return records(instanceAddressRecords(question.name, question.type, offered, config.serviceTtl));
    }
  }
}

/** Passing (and warning, unless onlyPassing) instances with a weight, carrying `tag` if asked. */
function eligibleInstances(instances: readonly Instance[], tag: string | undefined, onlyPassing: boolean): Instance[] {
  return instances.filter((i) => {
    const health = instanceHealth(i);
    if (health === 'critical' || (onlyPassing && health !== 'passing') || effectiveWeight(i) <= 0) return false;
    return tag === undefined || i.tags.some((t) => t.toLowerCase() === tag);
  });
}

/**
 * A fresh order per query in which an instance comes first with probability weight / total
 * (Efraimidis–Spirakis: sort by u^(1/w), highest first).
 */
export function weightedShuffle(instances: Instance[], random: () => number): Instance[] {
  const keyed = instances.map((instance) => ({ instance, key: Math.pow(random(), 1 / effectiveWeight(instance)) }));
  keyed.sort((a, b) => b.key - a.key);
  return keyed.map((k) => k.instance);
}

/** A / AAAA records of instances (one per address), or CNAMEs for instances named by host. */
function instanceAddressRecords(name: string, type: QueryType, instances: readonly Instance[], ttl: number): Answer[] {
  const answers = addressRecords(name, type, instances.map((i) => i.address), ttl);
  if (answers.length > 0 || (type !== 'A' && type !== 'AAAA' && type !== 'ANY')) return answers;
  // Consul's behaviour for a service registered with a host name: point at it.
  const host = instances.find((i) => isIP(i.address) === 0);
  return host === undefined ? [] : [{ name, type: 'CNAME', class: 'IN', ttl, data: host.address }];
}

/** The A (IPv4) and AAAA (IPv6) records among `addresses` that `type` asks for, deduplicated. */
function addressRecords(name: string, type: QueryType, addresses: readonly string[], ttl: number): Answer[] {
  const wantA = type === 'A' || type === 'ANY';
  const wantAAAA = type === 'AAAA' || type === 'ANY';
  const seen = new Set<string>();
  const answers: Answer[] = [];
  for (const address of addresses) {
    const family = isIP(address);
    if (seen.has(address) || !((family === 4 && wantA) || (family === 6 && wantAAAA))) continue;
    seen.add(address);
    answers.push({ name, type: family === 4 ? 'A' : 'AAAA', class: 'IN', ttl, data: address });
  }
  return answers;
}

/**
 * SRV: priority 1, the instance's weight, its port, and as target `<hex>.addr.<dc>.<domain>`
 * (its address, resolvable by us; given in the additional section) — or its host name.
 */
function srvRecords(name: string, instances: readonly Instance[], domain: string, config: DnsAnswerConfig): BuiltAnswer {
  const answers: Answer[] = [];
  const additionals: Answer[] = [];
  const added = new Set<string>();
  for (const instance of instances) {
    const hex = addressHex(instance.address);
    const target = hex === undefined ? instance.address : `${hex}.addr.${config.datacenter}.${domain}`;
    const weight = Math.min(65535, Math.max(1, Math.round(effectiveWeight(instance))));
    answers.push({ name, type: 'SRV', class: 'IN', ttl: config.serviceTtl, data: { priority: 1, weight, port: instance.port, target } });
    if (hex !== undefined && !added.has(target)) {
      added.add(target);
      additionals.push(...addressRecords(target, 'ANY', [instance.address], config.serviceTtl));
    }
  }
  return { rcode: 'NOERROR', answers, authorities: [], additionals };
}

function soa(domain: string, rev: number, config: DnsAnswerConfig): Answer {
  return {
    name: domain,
    type: 'SOA',
    class: 'IN',
    ttl: config.negativeTtl,
    data: {
      mname: `ns.${domain}`,
      rname: `hostmaster.${domain}`,
      serial: rev % 2 ** 32,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: config.negativeTtl,
    },
  };
}
