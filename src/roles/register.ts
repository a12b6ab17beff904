import { fetch, type Dispatcher } from 'undici';
import type { RegisterConfig, SwitchboardConfig } from '../config/types';
import { registryDispatcher } from '../tls/client-tls';
import { SwitchboardError } from '../errors';
import type { Logger } from '../log';
import type { Stoppable } from './lifecycle';
import { registryUrls } from './registry-urls';

/**
 * `switchboard register`: a sidecar for a service that does not speak to the registry itself.
 * It registers one instance with a TTL check, heartbeats it every third of the TTL, registers
 * it again if the registry lost it (reaped, store restored), and deregisters it on
 * SIGTERM/SIGINT. If the sidecar dies, the TTL lapses and the instance leaves rotation.
 * Registries are tried in order (`--registry A,B`); any of them will do.
 */

export type RunningSidecar = Stoppable;

const REQUEST_TIMEOUT_MS = 5000;
const MAX_RETRY_MS = 1000;

export async function startRegister(config: Readonly<SwitchboardConfig>, logger: Logger): Promise<RunningSidecar> {
  const urls = registryUrls(config.proxy.registry, 'register');
  const sidecar = new Sidecar(urls, registrationOf(config.register), logger.child({ component: 'sidecar' }), config.token, registryDispatcher(config.caFile));
  sidecar.start();
  return { stop: () => sidecar.stop() };
}

interface Registration {
  id: string;
  checkId: string;
  heartbeatMs: number;
  /** The register request body, Consul's field names. */
  body: string;
}

function registrationOf(r: Readonly<RegisterConfig>): Registration {
  const missing = (flag: string, field: string): SwitchboardError =>
    new SwitchboardError('config_invalid', `register.${field}: the register role needs --${flag}`, { field: `register.${field}` });
  if (r.service === undefined) throw missing('service', 'service');
  if (r.port === undefined) throw missing('port', 'port');
  const id = r.id ?? `${r.service}-${r.address}-${r.port}`;
  const checkId = `service:${id}`;
  const check = {
    CheckID: checkId,
    TTL: `${r.ttl}ms`,
    ...(r.deregisterAfter > 0 ? { DeregisterCriticalServiceAfter: `${r.deregisterAfter}ms` } : {}),
  };
  const body = JSON.stringify({ ID: id, Name: r.service, Address: r.address, Port: r.port, Tags: r.tags, Check: check });
  return { id, checkId, heartbeatMs: Math.max(100, Math.floor(r.ttl / 3)), body };
}

class Sidecar {
  private registered = false;
  private failing = false;
  private stopped = false;
  private current = 0;
  private timer?: NodeJS.Timeout;
  private beating?: Promise<void>;

  constructor(
    private readonly urls: string[],
    private readonly registration: Registration,
    private readonly log: Logger,
    /** ACL token sent as X-Consul-Token. */
    private readonly token?: string,
    /** An https registry's CA (the caFile setting); fetch's default without. */
    private readonly dispatcher?: Dispatcher,
  ) {}

  start(): void {
    this.tick();
  }

  /** Stops heartbeating and deregisters (best effort: if no registry answers, the TTL lapses). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.beating;
    if (!this.registered) return;
    try {
      const status = await this.call(`/v1/agent/service/deregister/${encodeURIComponent(this.registration.id)}`);
      this.log.info({ id: this.registration.id, status }, 'deregistered');
    } catch (err) {
      this.log.warn({ err, id: this.registration.id }, 'could not deregister; the TTL check will lapse');
    }
  }

  private tick(): void {
    this.beating = this.beat().finally(() => {
      this.beating = undefined;
      if (this.stopped) return;
      const wait = this.failing ? Math.min(MAX_RETRY_MS, this.registration.heartbeatMs) : this.registration.heartbeatMs;
      this.timer = setTimeout(() => this.tick(), wait);
    });
  }

  /** Register if needed, then pass the check (a TTL check starts critical). */
  private async beat(): Promise<void> {
    try {
      if (!this.registered) await this.register();
      const status = await this.call(`/v1/agent/check/pass/${encodeURIComponent(this.registration.checkId)}`);
      if (status === 404) {
        this.log.warn({ id: this.registration.id }, 'the registry no longer knows this instance; registering it again');
        this.registered = false;
        await this.register();
        await this.call(`/v1/agent/check/pass/${encodeURIComponent(this.registration.checkId)}`);
      }
      if (this.failing) this.log.info({ id: this.registration.id }, 'heartbeats reach the registry again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.log.warn({ err, id: this.registration.id }, 'no registry reachable; retrying');
      this.failing = true;
    }
  }

  private async register(): Promise<void> {
    const status = await this.call('/v1/agent/service/register', this.registration.body);
    if (status !== 200) throw new Error(`registering ${this.registration.id} answered HTTP ${status}`);
    this.registered = true;
    this.log.info({ id: this.registration.id }, 'registered');
  }

  /** PUT to the registry that answered last, then the others; resolves with a status < 500. */
  private async call(path: string, body?: string): Promise<number> {
    let lastError: unknown;
    for (let tried = 0; tried < this.urls.length; tried++) {
      const index = (this.current + tried) % this.urls.length;
      try {
        const headers = this.token === undefined ? undefined : { 'x-consul-token': this.token };
        const response = await fetch(`${this.urls[index]}${path}`, { method: 'PUT', body, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), dispatcher: this.dispatcher });
        await response.arrayBuffer();
        if (response.status >= 500) throw new Error(`${this.urls[index]} answered HTTP ${response.status}`);
        this.current = index;
        return response.status;
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }
}
