/**
 * Slices of the default service policy with a test's changes: what the proxy's modules are
 * given (they hold no defaults of their own; src/config/schema.ts does).
 */
import { defaultServicePolicy } from '../../src/config/load';
import type { ServicePolicy } from '../../src/config/types';

export function policySection<K extends 'slowStart' | 'latencyAware' | 'healthCheck' | 'outlierDetection' | 'retries' | 'limits'>(
  section: K,
  overrides: Partial<ServicePolicy[K]> = {},
): ServicePolicy[K] {
  return { ...structuredClone(defaultServicePolicy()[section]), ...overrides } as ServicePolicy[K];
}
