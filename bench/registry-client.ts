/**
 * Registers and deregisters instances through Switchboard's Consul-compatible agent API, the
 * way any Consul client would. Resolves only once the registry acknowledged (HTTP 200).
 */
import type http from 'node:http';
import { registrationBody, type InstanceSpec } from '../test/helpers/distributed';
import { httpRequest, keepAliveAgent } from './http';

export type { InstanceSpec };

export class RegistryClient {
  private readonly agent: http.Agent;

  constructor(
    /** e.g. http://127.0.0.1:8500 */
    readonly baseUrl: string,
    maxSockets = 64,
  ) {
    this.agent = keepAliveAgent(maxSockets);
  }

  async register(instance: InstanceSpec): Promise<void> {
    await this.put('/v1/agent/service/register', registrationBody(instance));
  }

  async deregister(id: string): Promise<void> {
    await this.put(`/v1/agent/service/deregister/${encodeURIComponent(id)}`);
  }

  close(): void {
    this.agent.destroy();
  }

  private async put(path: string, body?: string): Promise<void> {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
    // Against a registry with ACLs on: the token the roles read too.
    const token = process.env.SWITCHBOARD_TOKEN ?? process.env.CONSUL_HTTP_TOKEN;
    if (token) headers['x-consul-token'] = token;
    const res = await httpRequest(this.baseUrl + path, { method: 'PUT', headers, body, agent: this.agent, timeoutMs: 30_000 });
    if (res.status !== 200) throw new Error(`PUT ${path} answered ${res.status}: ${res.body.slice(0, 200)}`);
  }
}
