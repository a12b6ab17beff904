import type { ProxyReport } from './proxy-report';
import type { ReportChannel } from './report-channel';

/** `switchboard all`: the proxy's reports reach the registry in the same process. */
export class LocalReportChannel implements ReportChannel {
  private readonly listeners = new Set<(report: ProxyReport) => void>();

  publish(report: ProxyReport): void {
    for (const listener of this.listeners) listener(report);
  }

  subscribe(listener: (report: ProxyReport) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
