/**
 * TLS end to end, as a user runs it: `switchboard all` with HTTPS on the registry API, the admin
 * listener and the proxy (HTTP/2 too); the `register` sidecar and the npm `consul` client talk
 * to the HTTPS registry with a CA file (flag, or Consul's CONSUL_HTTP_ADDR / CONSUL_HTTP_SSL /
 * CONSUL_CACERT); a `switchboard proxy` follows an HTTPS registry; a bad certificate file is a
 * one-line configuration error (exit 2). Certificates come from openssl.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { Backend, type BackendReply } from '../helpers/backend';
import { TestCA } from '../helpers/certs';
import { startRedis, type RedisHandle } from '../helpers/redis';
import { RoleProcess } from '../helpers/role-process';
import { spawnSwitchboard } from '../helpers/switchboard-bin';
import { SwitchboardProcess, assertOneLine, request, runSwitchboard, waitFor } from '../helpers/switchboard-process';

const TIMEOUT = { timeout: 90_000 };

interface Reply {
  status: number;
  body: string;
}

/** One HTTPS request verified against `ca`, without keep-alive. */
function get(url: string, ca: Buffer, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // The certificate is checked for `localhost` whatever Host says (node would check the Host).
    const req = https.request(url, { ca, headers, method, agent: false, servername: 'localhost' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('TLS end to end', TIMEOUT, () => {
  let ca: TestCA;
  let sb: RoleProcess;
  let backend: Backend;
  let redis: RedisHandle | undefined;
  const children: ChildProcess[] = [];
  const at = (listener: 'api' | 'admin' | 'proxy', p: string): string => `https://${sb.addresses[listener]}${p}`;

  before(async () => {
    ca = TestCA.create();
    const server = ca.issue('server', ['localhost', 'web.svc', '127.0.0.1']);
    const config = path.join(ca.dir, 'switchboard.yaml');
    const tls = `{ certificates: [{ certFile: ${server.certFile}, keyFile: ${server.keyFile} }] }`;
    writeFileSync(config, `api:\n  tls: ${tls}\nadmin:\n  tls: ${tls}\nproxy:\n  tls: ${tls}\n`);
    sb = await SwitchboardProcess.start({ args: [`--config=${config}`] });
    backend = await Backend.start('web-1');
  });

  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await sb?.cleanup();
    await backend?.close();
    await redis?.destroy();
  });

  it('serves the registry API, the admin listener and the proxy over HTTPS', TIMEOUT, async () => {
    const leader = await get(at('api', '/v1/status/leader'), ca.pem);
    assert.equal(leader.status, 200);
    assert.equal((await get(at('admin', '/healthz'), ca.pem)).status, 200);
    const unknown = await get(at('proxy', '/'), ca.pem, { host: 'nobody.svc' });
    assert.equal(unknown.status, 404);
    // The listening lines give each listener's URL with its scheme.
    const urls = sb.logs().filter((l) => l.msg === 'listening' && l.listener !== 'dns').map((l) => [l.listener, l.url]);
    assert.deepEqual(urls.sort(), (['admin', 'api', 'proxy'] as const).map((l) => [l, at(l, '')]));
  });

  it('the register sidecar registers through an HTTPS registry with --ca-file, and through CONSUL_HTTP_ADDR/SSL/CACERT', TIMEOUT, async () => {
    const api = sb.addresses.api as string;
    const viaFlag = spawnSwitchboard(['register', `--registry=https://${api}`, `--ca-file=${ca.certFile}`, '--service=web', `--port=${backend.port}`, '--id=web-flag']);
    const viaEnv = spawnSwitchboard(['register', '--service=web', `--port=${backend.port}`, '--id=web-env'], { CONSUL_HTTP_ADDR: api, CONSUL_HTTP_SSL: 'true', CONSUL_CACERT: ca.certFile });
    for (const child of [viaFlag, viaEnv]) {
      child.stdout.resume();
      child.stderr.resume();
    }
    children.push(viaFlag, viaEnv);
    await waitFor('both sidecars to register', async () => {
      const services = JSON.parse((await get(at('api', '/v1/agent/services'), ca.pem)).body) as Record<string, unknown>;
      return 'web-flag' in services && 'web-env' in services;
    }, 20_000);
    // And the proxy, over HTTPS too, routes to the instance they registered.
    await waitFor('the proxy to route web.svc', async () => (await get(at('proxy', '/hello'), ca.pem, { host: 'web.svc' })).status === 200, 20_000);
    const reply = JSON.parse((await get(at('proxy', '/hello'), ca.pem, { host: 'web.svc' })).body) as BackendReply;
    assert.equal(reply.headers['x-forwarded-proto'], 'https');
  });

  it('the npm consul client works against the HTTPS registry (secure: true and an agent trusting the CA)', TIMEOUT, async () => {
    const [host, port] = (sb.addresses.api as string).split(':');
    const consul = new Consul({ host, port: Number(port), secure: true, agent: new https.Agent({ ca: ca.pem }) } as ConstructorParameters<typeof Consul>[0]);
    await consul.agent.service.register({ name: 'tls-client', id: 'tls-client-1', address: '127.0.0.1', port: backend.port });
    const entries = await consul.health.service({ service: 'tls-client' });
    assert.equal(entries.length, 1);
    assert.equal(entries[0].Service.ID, 'tls-client-1');
  });

  it('a switchboard proxy follows an HTTPS registry (--ca-file) and serves what it lists', TIMEOUT, async () => {
    redis = await startRedis();
    // The all role publishes on its local bus only: this proxy learns by polling (resync).
    const proxy = await RoleProcess.start('proxy', [`--registry=https://${sb.addresses.api}`, `--ca-file=${ca.certFile}`, `--redis=${redis.url}`, '--workers=1', '--resync-interval=200ms']);
    try {
      await waitFor('the proxy to route web.svc from the HTTPS registry', async () => (await request(proxy.url('proxy', '/'), { headers: { host: 'web.svc' } })).status === 200, 20_000);
    } finally {
      await proxy.cleanup();
    }
  });

  it('a certificate file that does not load is a one-line configuration error naming the field and the file (exit 2)', TIMEOUT, async () => {
    const config = path.join(ca.dir, 'broken.yaml');
    writeFileSync(config, `api:\n  tls: { certificates: [{ certFile: ${ca.dir}/missing.crt, keyFile: ${ca.dir}/missing.key }] }\n`);
    const result = await runSwitchboard(['all', `--config=${config}`, `--data-dir=${ca.dir}/data-broken`, '--api-listen=127.0.0.1:0', '--proxy-listen=127.0.0.1:0', '--admin-listen=127.0.0.1:0', '--dns-listen=']);
    assert.equal(result.code, 2);
    assertOneLine(result.stderr, 'api.tls.certificates[0].certFile', 'missing.crt', 'ENOENT');
  });
});
