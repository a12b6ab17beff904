import { createHmac, randomUUID } from 'node:crypto';
import { realScheduler, type Scheduler } from '../clock';
import type { Logger } from '../log';
import { counter } from '../metrics';
import { TokenBuckets } from '../registry/token-buckets';
import type { NotifyConfig, NotifyEvent, WebhookRule } from './events';

/**
 * One webhook destination: a FIFO of events POSTed one at a time as JSON, at most
 * `rateLimit` a second, each retried with exponential backoff (`backoff` doubling up to
 * `maxBackoff`, `retries` times) and then dropped. A full queue drops the oldest event. All of
 * it runs beside the checks and the proxy, never in their way: `send` only enqueues.
 *
 * With a `secret`, `X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of the body>` lets the
 * receiver check the message came from us (GitHub's scheme).
 */

export type DeliveryResult = 'sent' | 'dropped';

const notificationsTotal = counter('switchboard_notifications_total', 'Webhook notifications: sent, failed attempts (retried), dropped (given up or queue full).', ['webhook', 'result']);

interface Queued {
  event: NotifyEvent;
  done: (result: DeliveryResult) => void;
}

export class WebhookDestination {
  readonly name: string;
  private readonly queue: Queued[] = [];
  private pumping = false;
  private closed = false;
  private readonly limiter: TokenBuckets;
  private cancelSleep: (() => void) | undefined;
  private wake: (() => void) | undefined;
  private readonly inFlight = new Set<AbortController>();

  constructor(
    readonly rule: WebhookRule,
    private readonly config: Readonly<Omit<NotifyConfig, 'webhooks'>>,
    private readonly logger: Logger,
    private readonly scheduler: Scheduler = realScheduler,
  ) {
    this.name = rule.name !== '' ? rule.name : new URL(rule.url).host;
    this.limiter = new TokenBuckets(config.rateLimit, Math.max(1, config.rateLimit), 1, () => scheduler.now());
  }

  /** Resolves when the event was delivered or given up; never rejects. */
  send(event: NotifyEvent): Promise<DeliveryResult> {
    if (this.closed) return Promise.resolve('dropped');
    return new Promise((done) => {
      this.queue.push({ event, done });
      if (this.queue.length > this.config.queueLimit) {
        notificationsTotal.inc({ webhook: this.name, result: 'dropped' });
        this.logger.warn({ webhook: this.name }, 'notification queue full: oldest notification dropped');
        this.queue.shift()?.done('dropped');
      }
      void this.pump();
    });
  }

  /** Drops what is queued and cancels what is in flight (leadership lost, shutdown). */
  close(): void {
    this.closed = true;
    for (const q of this.queue.splice(0)) q.done('dropped');
    for (const controller of this.inFlight) controller.abort();
    this.cancelSleep?.();
    this.wake?.();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closed && this.queue.length > 0) {
        const next = this.queue[0];
        await this.throttle();
        if (this.closed) break;
        const result = await this.deliver(next.event);
        this.queue.shift();
        next.done(result);
      }
    } finally {
      this.pumping = false;
    }
  }

  private async throttle(): Promise<void> {
    for (;;) {
      const wait = this.limiter.take(this.name);
      if (wait === 0 || this.closed) return;
      await this.sleep(wait * 1000);
    }
  }

  private async deliver(event: NotifyEvent): Promise<DeliveryResult> {
    const body = JSON.stringify(event);
    const delivery = randomUUID();
    let backoff = this.config.backoff;
    for (let attempt = 0; attempt <= this.config.retries && !this.closed; attempt++) {
      if (attempt > 0) {
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, this.config.maxBackoff);
        if (this.closed) break;
      }
      const failure = await this.post(body, event.event, delivery);
      if (failure === undefined) {
        notificationsTotal.inc({ webhook: this.name, result: 'sent' });
        return 'sent';
      }
      notificationsTotal.inc({ webhook: this.name, result: 'failed' });
      this.logger.warn({ webhook: this.name, event: event.event, attempt: attempt + 1, reason: failure }, 'notification not accepted');
    }
    notificationsTotal.inc({ webhook: this.name, result: 'dropped' });
    this.logger.error({ webhook: this.name, event: event.event, service: event.service, instance: event.instance?.id }, 'notification dropped after its retries');
    return 'dropped';
  }

  /** undefined when the receiver answered 2xx; else why not. */
  private async post(body: string, eventName: string, delivery: string): Promise<string | undefined> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'switchboard-notify',
      'x-switchboard-event': eventName,
      'x-switchboard-delivery': delivery,
    };
    if (this.rule.secret !== '') headers['x-switchboard-signature'] = `sha256=${createHmac('sha256', this.rule.secret).update(body).digest('hex')}`;
    const controller = new AbortController();
    this.inFlight.add(controller);
    const timer = setTimeout(() => controller.abort(), this.config.timeout);
    try {
      const response = await fetch(this.rule.url, { method: 'POST', headers, body, signal: controller.signal, redirect: 'manual' });
      await response.arrayBuffer().catch(() => undefined);
      return response.status >= 200 && response.status < 300 ? undefined : `HTTP ${response.status}`;
    } catch (err) {
      return controller.signal.aborted ? `no answer within ${this.config.timeout} ms` : ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.cancelSleep = this.scheduler.schedule(ms, () => {
        this.cancelSleep = undefined;
        this.wake = undefined;
        resolve();
      });
    });
  }
}
