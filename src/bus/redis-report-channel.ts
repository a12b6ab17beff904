import type { Logger } from '../log';
import { counter } from '../metrics';
import { parseReport, type ProxyReport } from './proxy-report';
import { quit } from './redis-bus';
import { createRedisConnection, redactRedisUrl, type RedisConnection } from './redis-url';
import type { ReportChannel } from './report-channel';

const droppedTotal = counter('switchboard_bus_reports_dropped_total', 'Proxy runtime reports not sent or dropped unread, by reason', ['reason']);

/**
 * Proxies' runtime reports over Redis pub/sub, on `<channel>:reports` beside the catalog
 * channel: proxies publish (a connection of their own, made on the first report; nothing is
 * queued while Redis is down — a report a second old is worthless), registries subscribe.
 * Why Redis rather than registries scraping each proxy's admin listener: proxies come and go
 * and need not be reachable from the registries; every proxy already reaches Redis.
 */
export class RedisReportChannel implements ReportChannel {
  private publisher: RedisConnection | undefined;
  private subscriber: RedisConnection | undefined;
  private readonly listeners = new Set<(report: ProxyReport) => void>();
  private closed = false;
  private readonly channel: string;

  constructor(private readonly options: { url: string; channel: string; logger?: Logger }) {
    this.channel = `${options.channel}:reports`;
  }

  publish(report: ProxyReport): void {
    if (this.closed) return;
    this.publisher ??= this.connect('reporter', false);
    if (this.publisher.status !== 'ready') {
      droppedTotal.inc({ reason: 'redis_unavailable' });
      return;
    }
    this.publisher.publish(this.channel, JSON.stringify(report)).catch(() => droppedTotal.inc({ reason: 'redis_unavailable' }));
  }

  subscribe(listener: (report: ProxyReport) => void): () => void {
    this.listeners.add(listener);
    if (this.subscriber === undefined && !this.closed) {
      const conn = this.connect('report-listener', true);
      conn.on('message', (channel: string, raw: string) => {
        if (channel !== this.channel) return;
        const report = parseReport(raw);
        if (report === undefined) {
          droppedTotal.inc({ reason: 'malformed' });
          return;
        }
        for (const l of this.listeners) {
          try {
            l(report);
          } catch (err) {
            this.options.logger?.error({ err }, 'report listener threw');
          }
        }
      });
      // ioredis re-subscribes on reconnect (autoResubscribe); a missed report is replaced by the next.
      void conn.subscribe(this.channel).catch((err: unknown) => this.options.logger?.warn({ err }, 'report channel: SUBSCRIBE failed'));
      this.subscriber = conn;
    }
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await Promise.all([this.publisher, this.subscriber].map((conn) => conn && quit(conn)));
  }

  private connect(role: string, offlineQueue: boolean): RedisConnection {
    const conn = createRedisConnection(this.options.url, {
      connectionName: `switchboard-${role}`,
      enableOfflineQueue: offlineQueue,
      retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 4), 2000),
    });
    let down = false;
    conn.on('error', (err: Error) => {
      if (!down) this.options.logger?.warn({ err, role, url: redactRedisUrl(this.options.url) }, 'report channel: redis connection lost');
      down = true;
    });
    conn.on('ready', () => {
      down = false;
    });
    return conn;
  }
}
