/**
 * `switchboard register`, the sidecar: it registers its instance with a TTL check and keeps
 * it passing, registers it again when the registry lost it, deregisters it on SIGTERM, and
 * when it dies without a word the TTL lapses and the proxy stops routing to the instance.
 * Against a real `switchboard all`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Backend } from '../helpers/backend';
import { REPO_ROOT, SwitchboardProcess, jsonOf, request, waitFor } from '../helpers/switchboard-process';

const BIN = path.join(REPO_ROOT, 'bin', 'switchboard.js');
const TIMEOUT = { timeout: 40_000 };

describe('switchboard register (sidecar)', TIMEOUT, () => {
  let sb: SwitchboardProcess | undefined;
  let backend: Backend | undefined;
  const sidecars: ChildProcess[] = [];

  before(async () => {
    sb = await SwitchboardProcess.start();
    backend = await Backend.start('sc-1');
  });

  after(async () => {
    for (const child of sidecars) child.kill('SIGKILL');
    await sb?.cleanup();
    await backend?.close();
  });

  function startSidecar(id: string): { child: ChildProcess; exit: Promise<number | null>; output: () => string } {
    const args = ['register', `--registry=${sb?.url('api', '')}`, '--service=web', `--port=${backend?.port}`, `--id=${id}`, '--ttl=2s'];
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    sidecars.push(child);
    let text = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (text += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (text += s));
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, exit, output: () => text };
  }

  async function routedTo(): Promise<string | undefined> {
    const reply = await request((sb as SwitchboardProcess).url('proxy', '/'), { headers: { host: 'web.svc' } });
    return reply.status === 200 ? (jsonOf(reply) as { backend: string }).backend : undefined;
  }

  /** The instance record's ModifyIndex: it moves whenever the record is rewritten. */
  async function instanceIndex(id: string): Promise<number> {
    const entries = jsonOf(await request((sb as SwitchboardProcess).url('api', '/v1/health/service/web'))) as Array<{ Service: { ID: string; ModifyIndex: number } }>;
    return entries.find((e) => e.Service.ID === id)?.Service.ModifyIndex ?? -1;
  }

  /** TTL heartbeats the registry has answered (its request counter for the pass route). */
  async function heartbeats(): Promise<number> {
    const text = (await request((sb as SwitchboardProcess).url('admin', '/metrics'))).body;
    const line = text.split('\n').find((l) => l.startsWith('switchboard_registry_http_requests_total{') && l.includes('/v1/agent/check/pass/') && l.includes('code_class="2xx"'));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  async function registered(id: string): Promise<boolean> {
    const reply = await request((sb as SwitchboardProcess).url('api', '/v1/agent/services'));
    return Object.prototype.hasOwnProperty.call(jsonOf(reply), id);
  }

  it('registers and heartbeats its instance, registers it again when lost, deregisters on SIGTERM', TIMEOUT, async () => {
    const sidecar = startSidecar('web-sc-1');
    await waitFor('the proxy to route to the sidecar instance', async () => (await routedTo()) === 'sc-1', 15_000);
    // Heartbeats (every third of the 2 s TTL) keep it passing well past one TTL: five of them
    // span more than the TTL, and the instance record was never rewritten meanwhile (a lapse
    // would have written it critical, then passing again).
    const before = await instanceIndex('web-sc-1');
    const beats = await heartbeats();
    await waitFor('five more heartbeats', async () => (await heartbeats()) >= beats + 5, 15_000);
    assert.equal(await instanceIndex('web-sc-1'), before, sidecar.output());
    assert.equal(await routedTo(), 'sc-1', sidecar.output());

    const api = (sb as SwitchboardProcess).url('api', '/v1/agent/service/deregister/web-sc-1');
    assert.equal((await request(api, { method: 'PUT' })).status, 200);
    await waitFor('the sidecar to register the instance again', () => registered('web-sc-1'), 10_000);
    await waitFor('the proxy to route to it again', async () => (await routedTo()) === 'sc-1', 10_000);

    sidecar.child.kill('SIGTERM');
    assert.equal(await sidecar.exit, 0, sidecar.output());
    assert.equal(await registered('web-sc-1'), false, 'deregistered before exiting');
  });

  it('a sidecar killed with -9 stops heartbeating: the TTL lapses and the proxy stops routing there', TIMEOUT, async () => {
    const sidecar = startSidecar('web-sc-2');
    await waitFor('the proxy to route to the sidecar instance', async () => (await routedTo()) === 'sc-1', 15_000);
    sidecar.child.kill('SIGKILL');
    await sidecar.exit;
    await waitFor('the instance to leave rotation', async () => (await routedTo()) === undefined, 15_000);
    assert.equal(await registered('web-sc-2'), true, 'still registered (critical) until DeregisterCriticalServiceAfter');
  });
});
