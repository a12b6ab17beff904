import type { InstanceReport, ProxyReport } from '../../bus/proxy-report';
import type { EventLog } from './event-log';

/**
 * What the proxies say they see (bus/proxy-report.ts), kept by every registry for its web UI:
 * the latest report of each proxy process, when it came, and per instance a short history of
 * traffic summed over the proxies (the sparklines). A proxy silent for STALE_MS is shown
 * stale; one silent for FORGET_MS is dropped. New ejections and resyncs go to the timeline.
 */

export const STALE_MS = 5_000;
const FORGET_MS = 5 * 60_000;
/** Points of history per instance: one per second, two minutes. */
const HISTORY_POINTS = 120;
/**
 * Bounds on what reports can make us keep: reports come off Redis, and a publisher that is
 * not a proxy must not grow these tables without end. Past them, new proxies or instances
 * are not tracked (until old ones are forgotten).
 */
const MAX_PROXIES = 1_000;
const MAX_HISTORIES = 100_000;

export interface ProxyEntry {
  report: ProxyReport;
  receivedAt: number;
}

export interface HistoryPoint {
  at: number;
  rps: number;
  errorRate: number;
  p99: number;
}

export class RuntimeView {
  private readonly proxies = new Map<string, ProxyEntry>();
  /** `service\0instance` → points, oldest first. */
  private readonly history = new Map<string, HistoryPoint[]>();
  private seq = 0;

  constructor(
    private readonly events: EventLog,
    private readonly now: () => number = Date.now,
  ) {}

  /** Grows with every report (the UI's stream says something changed). */
  get version(): number {
    return this.seq;
  }

  accept(report: ProxyReport): void {
    const now = this.now();
    const previous = this.proxies.get(report.proxy)?.report;
    if (previous === undefined && this.proxies.size >= MAX_PROXIES) {
      this.forgetSilent(now);
      if (this.proxies.size >= MAX_PROXIES) return;
    }
    if (previous === undefined) this.events.add({ kind: 'proxy', detail: `proxy ${report.proxy} reporting` }, now);
    this.noteChanges(previous, report, now);
    this.proxies.set(report.proxy, { report, receivedAt: now });
    for (const [service, entry] of Object.entries(report.services)) {
      for (const [instance, state] of Object.entries(entry.instances)) this.addPoint(service, instance, state, now);
    }
    this.forgetSilent(now);
    this.seq++;
  }

  /** Every proxy heard from in the last FORGET_MS, with whether it is stale. */
  list(): Array<ProxyEntry & { stale: boolean }> {
    const now = this.now();
    this.forgetSilent(now);
    return [...this.proxies.values()].map((e) => ({ ...e, stale: now - e.receivedAt > STALE_MS }));
  }

  /** What each proxy reports of one instance (fresh and stale ones, marked). */
  instanceViews(service: string, instance: string): Array<{ proxy: string; stale: boolean; state: InstanceReport | undefined; panic: boolean }> {
    return this.list().map((e) => {
      const entry = Object.prototype.hasOwnProperty.call(e.report.services, service) ? e.report.services[service] : undefined;
      const state = entry !== undefined && Object.prototype.hasOwnProperty.call(entry.instances, instance) ? entry.instances[instance] : undefined;
      return { proxy: e.report.proxy, stale: e.stale, state, panic: entry?.panic ?? false };
    });
  }

  /** `service\0instance` of every instance some fresh proxy has ejected (one pass for a whole list). */
  ejectedSet(): Set<string> {
    const out = new Set<string>();
    for (const entry of this.list()) {
      if (entry.stale) continue;
      for (const [service, report] of Object.entries(entry.report.services)) {
        for (const [instance, state] of Object.entries(report.instances)) if (state.ejected !== undefined) out.add(`${service}\0${instance}`);
      }
    }
    return out;
  }

  /** Routes to `service` that fresh proxies have configured (host or prefix), as the UI lists them. */
  configuredRoutes(service: string): string[] {
    const routes = new Set<string>();
    for (const entry of this.list()) {
      if (entry.stale) continue;
      for (const route of entry.report.routes ?? []) if (route.service === service) routes.add(`${route.host ?? ''}${route.prefix ?? ''}`);
    }
    return [...routes];
  }

  historyOf(service: string, instance: string): HistoryPoint[] {
    return this.history.get(`${service}\0${instance}`) ?? [];
  }

  private addPoint(service: string, instance: string, state: InstanceReport, at: number): void {
    if (state.rps === undefined) return;
    const key = `${service}\0${instance}`;
    let points = this.history.get(key);
    if (points === undefined) {
      if (this.history.size >= MAX_HISTORIES) return;
      this.history.set(key, (points = []));
    }
    const second = Math.floor(at / 1000) * 1000;
    const last = points[points.length - 1];
    // Several proxies' reports of one second add up.
    if (last !== undefined && last.at === second) {
      const total = last.rps + state.rps;
      last.errorRate = total > 0 ? (last.errorRate * last.rps + (state.errorRate ?? 0) * state.rps) / total : 0;
      last.rps = total;
      last.p99 = Math.max(last.p99, state.p99 ?? 0);
    } else {
      points.push({ at: second, rps: state.rps, errorRate: state.errorRate ?? 0, p99: state.p99 ?? 0 });
      if (points.length > HISTORY_POINTS) points.shift();
    }
  }

  private noteChanges(previous: ProxyReport | undefined, report: ProxyReport, now: number): void {
    if (report.lastResync !== undefined && report.lastResync.at !== previous?.lastResync?.at) {
      this.events.add({ kind: 'resync', detail: `proxy ${report.proxy} resynced (${report.lastResync.reason})` }, now);
    }
    for (const [service, entry] of Object.entries(report.services)) {
      for (const [instance, state] of Object.entries(entry.instances)) {
        const before = previous?.services[service]?.instances[instance]?.ejected;
        if (state.ejected !== undefined && before === undefined) {
          this.events.add({ kind: 'ejected', service, instance, detail: `ejected by ${report.proxy}: ${state.ejected.reason}` }, now);
        }
      }
    }
  }

  private forgetSilent(now: number): void {
    for (const [id, entry] of this.proxies) if (now - entry.receivedAt > FORGET_MS) this.proxies.delete(id);
    // History of instances nobody reported lately goes too.
    for (const [key, points] of this.history) if (now - (points[points.length - 1]?.at ?? 0) > FORGET_MS) this.history.delete(key);
  }
}
