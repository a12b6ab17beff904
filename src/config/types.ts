import { ServicePolicySchema, type ConfigFile, type ServicePolicy } from './schema';

/**
 * The runtime configuration: the validated file (schema.ts), durations in milliseconds,
 * status ranges as [low, high], with `proxy.services.<name>` complete (its overrides merged
 * over `proxy.defaults`). Frozen once loaded. No field is restated here: every type is read
 * off the schema.
 */
export type { ServicePolicy };

export type ProxyConfig = Omit<ConfigFile['proxy'], 'services'> & {
  /** Complete per-service policies: the file's overrides merged over `defaults`. */
  services: Record<string, ServicePolicy>;
};

export type SwitchboardConfig = Omit<ConfigFile, 'proxy'> & { proxy: ProxyConfig };

export type ApiConfig = ConfigFile['api'];
export type AclConfig = ConfigFile['acl'];
export type RegistryConfig = ConfigFile['registry'];
export type StoreConfig = ConfigFile['store'];
export type BusConfig = ConfigFile['bus'];
export type RegisterConfig = ConfigFile['register'];
export type ClientTimeouts = ProxyConfig['clientTimeouts'];
/** TLS of a listener (api.tls, admin.tls; proxy.tls adds HTTP/2 and the redirect). */
export type ListenerTlsConfig = ApiConfig['tls'];
export type RouteRule = ProxyConfig['routes'][number];
export type BalancerPolicy = ServicePolicy['balancer'];
/** What a configuration reload did (the proxy's part, or a worker's). */
export interface ReloadReport {
  applied: string[];
  restartRequired: string[];
  /** Settings that could not be applied (a certificate file that fails to load): `field: reason`; the old value stays. */
  failed?: string[];
}

/** Envoy's retry_on, narrowed by idempotency (the schema's description says which is which). */
export type RetryOn = ServicePolicy['retries']['retryOn'][number];

function literals<T extends string>(node: unknown): readonly T[] {
  return Object.freeze((node as { anyOf: Array<{ const: T }> }).anyOf.map((s) => s.const));
}

/** Balancer names, read off the schema; src/proxy/balancers/ has one implementation per name. */
export const BALANCER_POLICIES: readonly BalancerPolicy[] = literals<BalancerPolicy>(ServicePolicySchema.properties.balancer);
export const RETRY_ON: readonly RetryOn[] = literals<RetryOn>(ServicePolicySchema.properties.retries.properties.retryOn.items);
