import type { ProxyReport } from './proxy-report';

/**
 * The plug point proxies' reports travel on (proxy-report.ts): `local` in `all`, Redis
 * pub/sub between processes. Fire and forget: a report that does not arrive is replaced a
 * second later.
 */
export interface ReportChannel {
  publish(report: ProxyReport): void;
  subscribe(listener: (report: ProxyReport) => void): () => void;
  close(): Promise<void>;
}
