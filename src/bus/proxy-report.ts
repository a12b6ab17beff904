/**
 * What each proxy tells the registries about itself once a second (the web UI's runtime
 * view): its catalog revision and last resync, and per service the instances it treats
 * specially or sent traffic to in the last second — requests/s, error rate, p50/p99, in
 * flight, its weight and why (slow start, latency), ejection with reason and time left,
 * failing probes. Idle, unremarkable instances are left out, so a report stays small.
 *
 * It travels on a ReportChannel (report-channel.ts): in-process in `all`, Redis pub/sub
 * between processes. At most once, and stale after a few seconds by design: a lost report
 * is replaced by the next one; nothing depends on it but what the UI shows.
 */
export interface InstanceReport {
  rps?: number;
  errorRate?: number;
  p50?: number;
  p99?: number;
  inFlight: number;
  /** What balancers use: Consul weight × slow start × latency factor. */
  weight: number;
  baseWeight: number;
  /** Slow start's share of the weight, below 1 while warming up. */
  warm?: number;
  /** Latency-aware share of the weight, below 1 while slower than its peers. */
  latencyFactor?: number;
  ejected?: { reason: string; remainingMs: number };
  probeFailing?: boolean;
}

export interface ServiceReport {
  panic: boolean;
  instances: Record<string, InstanceReport>;
}

export interface ProxyReport {
  /** Unique per process: host, listen address and pid. */
  proxy: string;
  /** The proxy listener's address (workers of one proxy share it). */
  address: string;
  pid: number;
  /** Catalog revision this proxy routes on. */
  rev: number;
  lastResync?: { at: number; reason: string };
  /** Wall-clock ms when made. */
  at: number;
  /** The proxy's configured route rules (proxy.routes), so the UI can list a service's routes. */
  routes?: RouteReport[];
  services: Record<string, ServiceReport>;
}

export interface RouteReport {
  service: string;
  host?: string;
  prefix?: string;
}

const MAX_ROUTES = 10_000;

/** Largest report accepted off the wire: well above 10,000 busy instances' worth. */
export const MAX_REPORT_BYTES = 4 * 1024 * 1024;

/** A report as received (from Redis: any bytes), or undefined when it is not one. */
export function parseReport(text: string): ProxyReport | undefined {
  if (text.length > MAX_REPORT_BYTES) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const r = value as Partial<ProxyReport>;
  if (typeof r !== 'object' || r === null) return undefined;
  if (typeof r.proxy !== 'string' || r.proxy.length > 300 || typeof r.address !== 'string' || r.address.length > 300) return undefined;
  if (!Number.isSafeInteger(r.pid) || !Number.isSafeInteger(r.rev) || !Number.isFinite(r.at)) return undefined;
  if (typeof r.services !== 'object' || r.services === null || Array.isArray(r.services)) return undefined;
  if (r.routes !== undefined && !(Array.isArray(r.routes) && r.routes.length <= MAX_ROUTES && r.routes.every(isRoute))) return undefined;
  // Name-keyed tables are Maps downstream; here only the shape of each entry is checked.
  for (const service of Object.values(r.services)) {
    if (typeof service !== 'object' || service === null || typeof service.instances !== 'object' || service.instances === null) return undefined;
    for (const instance of Object.values(service.instances)) {
      if (typeof instance !== 'object' || instance === null || !Number.isFinite(instance.weight) || !Number.isFinite(instance.inFlight)) return undefined;
    }
  }
  return r as ProxyReport;
}

function isRoute(value: unknown): value is RouteReport {
  const r = value as Partial<RouteReport>;
  return (
    typeof r === 'object' && r !== null && typeof r.service === 'string' &&
    (r.host === undefined || typeof r.host === 'string') && (r.prefix === undefined || typeof r.prefix === 'string')
  );
}
