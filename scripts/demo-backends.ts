/**
 * Demo services for the local cluster: small HTTP servers (each answers JSON naming itself)
 * registered through the registries with a TTL check, and heartbeated the way a service or
 * a sidecar would: PUT /v1/agent/check/pass/<check> every third of the TTL, to the
 * registries in turn (so one registry going away costs nothing).
 */
import { Backend } from '../test/helpers/backend';
import { type HttpReply, type RegistryRef, passCheck, register } from '../test/helpers/distributed';

export interface DemoService {
  service: string;
  instances: number;
}

export interface DemoInstance {
  id: string;
  service: string;
  port: number;
}

export const DEMO_SERVICES: DemoService[] = [
  { service: 'users', instances: 2 },
  { service: 'orders', instances: 1 },
];

const TTL_SECONDS = 10;

export class DemoBackends {
  private timer?: NodeJS.Timeout;
  private turn = 0;

  private constructor(
    private readonly registries: () => RegistryRef[],
    private readonly backends: Backend[],
    readonly instances: DemoInstance[],
  ) {}

  /** Starts the servers, registers them and passes their checks once (TTL checks start critical). */
  static async start(registries: () => RegistryRef[], services = DEMO_SERVICES): Promise<DemoBackends> {
    const backends: Backend[] = [];
    const instances: DemoInstance[] = [];
    const demo = new DemoBackends(registries, backends, instances);
    try {
      for (const { service, instances: count } of services) {
        for (let i = 1; i <= count; i++) {
          const id = `${service}-${i}`;
          const backend = await Backend.start(id);
          backends.push(backend);
          instances.push({ id, service, port: backend.port });
        }
      }
      for (const instance of instances) await demo.registerOne(instance);
      await demo.heartbeat();
      demo.timer = setInterval(() => void demo.heartbeat(), (TTL_SECONDS * 1000) / 3);
      return demo;
    } catch (err) {
      await demo.stop();
      throw err;
    }
  }

  get ttlSeconds(): number {
    return TTL_SECONDS;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.backends.map((b) => b.close()));
  }

  private async registerOne(instance: DemoInstance): Promise<void> {
    const reply = await this.toAnyRegistry((registry) => register(registry, { ...instance, ttl: `${TTL_SECONDS}s` }));
    if (reply.status !== 200) throw new Error(`registering ${instance.id} answered ${reply.status}: ${reply.body}`);
  }

  /** Best effort: a missed heartbeat is retried a third of a TTL later. */
  private async heartbeat(): Promise<void> {
    await Promise.all(
      this.instances.map((i) => this.toAnyRegistry((registry) => passCheck(registry, `service:${i.id}`)).catch(() => undefined)),
    );
  }

  /** Next registry in turn; on failure (down, 5xx) the others. */
  private async toAnyRegistry(call: (registry: RegistryRef) => Promise<HttpReply>): Promise<HttpReply> {
    const registries = this.registries();
    let last: unknown;
    for (let tried = 0; tried < registries.length; tried++) {
      const registry = registries[this.turn++ % registries.length];
      try {
        const reply = await call(registry);
        if (reply.status < 500) return reply;
        last = new Error(`${typeof registry === 'string' ? registry : registry.url('api', '')} answered ${reply.status}`);
      } catch (err) {
        last = err;
      }
    }
    throw last instanceof Error ? last : new Error(String(last));
  }
}
