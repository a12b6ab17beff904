import type { Check, Instance } from '../../catalog/model';
import { formatDuration } from '../../config/duration';

/**
 * Our model ↔ Consul's JSON shapes. Instances are not tied to Consul nodes here (any registry
 * process serves the whole catalog), so every instance is reported on one virtual node whose
 * address is the instance's own; tools that fall back to the node address (Prometheus) then
 * still reach the service.
 */
export interface ConsulNode {
  /** The catalog node every instance is reported on (config `nodeName`). */
  name: string;
  /** config `datacenter`: `?dc=` naming another is answered 500, as Consul does. */
  datacenter: string;
  /** The node's own address (the registry's API host), for /v1/catalog/nodes. */
  readonly address: string;
}

/** The node part of Consul's shapes; `address` is the instance's where an instance is listed. */
function nodeFields(node: ConsulNode, address: string): Record<string, unknown> {
  return { ID: '', Node: node.name, Address: address, Datacenter: node.datacenter, TaggedAddresses: { lan: address, wan: address } };
}

/** /v1/catalog/nodes, and `Node` of /v1/catalog/node/:node. */
export function catalogNode(node: ConsulNode, index: number): Record<string, unknown> {
  return {
    ...nodeFields(node, node.address),
    Meta: {},
    CreateIndex: 1,
    ModifyIndex: index,
  };
}

/** /v1/agent/services and /v1/agent/service/:id */
export function agentService(instance: Instance, node: ConsulNode): Record<string, unknown> {
  return {
    ID: instance.id,
    Service: instance.service,
    Tags: [...instance.tags],
    Meta: { ...instance.meta },
    Port: instance.port,
    Address: instance.address,
    Weights: { Passing: instance.weights.passing, Warning: instance.weights.warning },
    EnableTagOverride: false,
    Datacenter: node.datacenter,
  };
}

/** One row of /v1/catalog/service/:name */
export function catalogService(instance: Instance, node: ConsulNode): Record<string, unknown> {
  return {
    ...nodeFields(node, instance.address),
    NodeMeta: {},
    ServiceKind: '',
    ServiceID: instance.id,
    ServiceName: instance.service,
    ServiceTags: [...instance.tags],
    ServiceAddress: instance.address,
    ServiceWeights: { Passing: instance.weights.passing, Warning: instance.weights.warning },
    ServiceMeta: { ...instance.meta },
    ServicePort: instance.port,
    ServiceEnableTagOverride: false,
    CreateIndex: instance.createIndex,
    ModifyIndex: instance.modifyIndex,
  };
}

/** One entry of /v1/health/service/:name: `{Node, Service, Checks}`. */
export function healthEntry(instance: Instance, node: ConsulNode): Record<string, unknown> {
  return {
    Node: { ...nodeFields(node, instance.address), Meta: {} },
    Service: {
      ...agentService(instance, node),
      CreateIndex: instance.createIndex,
      ModifyIndex: instance.modifyIndex,
    },
    Checks: instance.checks.map((c) => healthCheck(instance, c, node)),
  };
}

export function healthCheck(instance: Instance, check: Check, node: ConsulNode): Record<string, unknown> {
  return {
    Node: node.name,
    CheckID: check.checkId,
    Name: check.name,
    Status: check.status,
    Notes: check.notes ?? '',
    Output: check.output,
    ServiceID: instance.id,
    ServiceName: instance.service,
    ServiceTags: [...instance.tags],
    Type: check.type,
    Definition: checkDefinition(check),
    CreateIndex: instance.createIndex,
    ModifyIndex: instance.modifyIndex,
  };
}

function checkDefinition(check: Check): Record<string, unknown> {
  const def: Record<string, unknown> = {};
  if (check.http !== undefined) def.HTTP = check.http;
  if (check.method !== undefined) def.Method = check.method;
  if (check.header !== undefined) def.Header = check.header;
  if (check.tcp !== undefined) def.TCP = check.tcp;
  if (check.args !== undefined) def.Args = [...check.args];
  if (check.ttlMs !== undefined) def.TTL = formatDuration(check.ttlMs);
  if (check.intervalMs !== undefined) def.Interval = formatDuration(check.intervalMs);
  if (check.timeoutMs !== undefined) def.Timeout = formatDuration(check.timeoutMs);
  if (check.deregisterCriticalAfterMs !== undefined) {
    def.DeregisterCriticalServiceAfter = formatDuration(check.deregisterCriticalAfterMs);
  }
  return def;
}

/** /v1/catalog/services: service name → every tag any of its instances has. */
export function serviceTags(instancesByService: Iterable<[string, Instance[]]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [service, instances] of instancesByService) {
    out[service] = [...new Set(instances.flatMap((i) => i.tags))];
  }
  return out;
}

const SERVICE_FIELDS = [
  'ID', 'Name', 'Tags', 'Address', 'Port', 'Meta', 'Weights', 'Check', 'Checks',
  'EnableTagOverride', 'Kind', 'Proxy', 'Connect', 'TaggedAddresses', 'SocketPath', 'Namespace', 'Partition',
];
const CHECK_FIELDS = [
  'CheckID', 'ID', 'Name', 'Notes', 'Status', 'Output', 'TTL', 'HTTP', 'TCP', 'Interval', 'Timeout', 'Method', 'Header',
  'DeregisterCriticalServiceAfter', 'Body', 'TLSSkipVerify', 'TLSServerName', 'DisableRedirects', 'OutputMaxSize',
  'SuccessBeforePassing', 'FailuresBeforeWarning', 'FailuresBeforeCritical', 'GRPC', 'GRPCUseTLS', 'Args', 'ScriptArgs',
  'Script', 'DockerContainerID', 'Shell', 'UDP', 'H2PING', 'H2PingUseTLS', 'AliasNode', 'AliasService', 'OSService',
  'TCPUseTLS',
];
const WEIGHT_FIELDS = ['Passing', 'Warning'];

const fold = (key: string): string => key.replace(/_/g, '').toLowerCase();
const lookup = (fields: string[]) => new Map(fields.map((f) => [fold(f), f]));
const SERVICE_LOOKUP = lookup(SERVICE_FIELDS);
const CHECK_LOOKUP = lookup(CHECK_FIELDS);
const WEIGHT_LOOKUP = lookup(WEIGHT_FIELDS);

/**
 * Consul decodes request bodies case-insensitively and accepts snake_case (`ttl`,
 * `deregister_critical_service_after`); clients rely on it. Known keys are renamed to their
 * canonical spelling; user data (Meta, Header) is left untouched.
 */
export function canonicalRegistration(body: unknown): unknown {
  const service = renameKeys(body, SERVICE_LOOKUP);
  if (!isPlainObject(service)) return service;
  if ('Weights' in service) service.Weights = renameKeys(service.Weights, WEIGHT_LOOKUP);
  if ('Check' in service) service.Check = renameKeys(service.Check, CHECK_LOOKUP);
  if (Array.isArray(service.Checks)) service.Checks = service.Checks.map((c) => renameKeys(c, CHECK_LOOKUP));
  return service;
}

/** Body of PUT /v1/agent/check/update/:id (`Status`, `Output`). */
export function canonicalCheckUpdate(body: unknown): unknown {
  return renameKeys(body, CHECK_LOOKUP);
}

function renameKeys(value: unknown, known: Map<string, string>): unknown {
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[known.get(fold(key)) ?? key] = v;
  return out;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
