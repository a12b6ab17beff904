/**
 * TLS on the proxy listener: certificates chosen by SNI (exact, wildcard, default), HTTP/2 and
 * HTTP/1.1 on one port through the same routing, certificate rotation under a keep-alive
 * connection, a bad certificate at reload or at startup, the redirect listener, and the
 * limits that keep an HTTP/2 client from flooding the proxy. Certificates come from openssl.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { isSwitchboardError } from '../../src/errors';
import { Backend, type BackendReply } from '../helpers/backend';
import { TestCA, type CertFiles } from '../helpers/certs';
import { ProxyHarness, metricValue, proxyConfig, waitFor } from '../helpers/proxy-harness';

const run = promisify(execFile);

interface Fixture {
  ca: TestCA;
  primary: CertFiles;
  exact: CertFiles;
  wildcard: CertFiles;
}

function certificates(): Fixture {
  const ca = TestCA.create();
  return {
    ca,
    // The first pair is the default: it also answers 127.0.0.1 so plain clients can verify it.
    primary: ca.issue('primary', ['users.svc', 'orders.svc', '127.0.0.1']),
    exact: ca.issue('exact', ['api.example.test']),
    wildcard: ca.issue('wildcard', ['*.wild.test']),
  };
}

/** `proxy.tls` with the three pairs, every other setting its default (or `extra`). */
function tlsSettings(f: Fixture, extra: Record<string, unknown> = {}): { tls: ReturnType<typeof proxyConfig>['tls'] } {
  return { tls: proxyConfig({ tls: { certificates: [f.primary, f.exact, f.wildcard], ...extra } }).tls };
}

/** The certificate a TLS client gets for `servername` (its subjectAltName and serial). */
async function peerCertificate(port: number, ca: Buffer, servername?: string): Promise<{ san: string; serial: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, ...(servername ? { servername } : {}), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve({ san: cert.subjectaltname ?? '', serial: cert.serialNumber });
    });
    socket.on('error', reject);
  });
}

/** One HTTP/2 request on `session`; body as text. */
function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let text = '';
    let head: http2.IncomingHttpHeaders = {};
    stream.setEncoding('utf8');
    stream.on('response', (h) => (head = h));
    stream.on('data', (c: string) => (text += c));
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: text }));
    stream.on('error', reject);
    if (body !== undefined) {
      // Two DATA frames and no content-length: the proxy must stream it on.
      stream.write(body.slice(0, 3));
      stream.end(body.slice(3));
    }
  });
}

function httpsGet(port: number, ca: Buffer, path: string, host: string, agent?: https.Agent): Promise<{ status: number; body: string; reused: boolean; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, ca, servername: host.split(':')[0], headers: { host }, agent: agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('proxy TLS termination and HTTP/2', () => {
  let f: Fixture;
  let backend: Backend;
  let harness: ProxyHarness;
  let port: number;

  before(async () => {
    f = certificates();
    backend = await Backend.start('users-1');
    harness = await ProxyHarness.start({ config: tlsSettings(f) });
    await harness.serveFrom('users', [backend]);
    port = harness.address.port;
  });

  after(async () => {
    await harness.stop();
    await backend.close();
  });

  it('picks the certificate by SNI: exact name, wildcard for one label, the first pair otherwise', async () => {
    const ca = f.ca.pem;
    assert.match((await peerCertificate(port, ca, 'api.example.test')).san, /DNS:api\.example\.test/);
    assert.match((await peerCertificate(port, ca, 'API.Example.Test')).san, /DNS:api\.example\.test/, 'SNI is case-insensitive');
    assert.match((await peerCertificate(port, ca, 'x.wild.test')).san, /\*\.wild\.test/);
    assert.match((await peerCertificate(port, ca, 'a.b.wild.test')).san, /DNS:users\.svc/, 'a wildcard covers one label only');
    assert.match((await peerCertificate(port, ca, 'unknown.test')).san, /DNS:users\.svc/);
    assert.match((await peerCertificate(port, ca)).san, /DNS:users\.svc/, 'no SNI: the default');
  });

  it('serves HTTP/1.1 over TLS through the same routing, telling the upstream the client used https', async () => {
    const reply = await httpsGet(port, f.ca.pem, '/hello', 'users.svc');
    assert.equal(reply.status, 200);
    const seen = JSON.parse(reply.body) as BackendReply;
    assert.equal(seen.path, '/hello');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
  });

  it('serves HTTP/2 (ALPN h2): GET, and a POST whose body has no content-length, forwarded as HTTP/1.1', async () => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca: f.ca.pem, servername: 'users.svc' });
    try {
      const get = await h2Request(session, { ':method': 'GET', ':path': '/h2?x=1', ':authority': 'users.svc' });
      assert.equal(get.status, 200);
      const seen = JSON.parse(get.body) as BackendReply;
      assert.equal(seen.path, '/h2?x=1');
      assert.equal(seen.headers.host, 'users.svc', ':authority becomes Host upstream');
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      assert.equal(get.headers['x-backend'], 'users-1');
      assert.ok(get.headers['x-request-id']);

      const before = backend.bodies.length;
      const post = await h2Request(session, { ':method': 'POST', ':path': '/orders', ':authority': 'users.svc' }, 'hello h2 body');
      assert.equal(post.status, 200);
      assert.equal(backend.bodies[before], 'hello h2 body');
      assert.equal((JSON.parse(post.body) as BackendReply).headers['transfer-encoding'], 'chunked');
    } finally {
      session.close();
    }
  });

  it('answers HTTP/2 errors of its own as JSON, and refuses a Host that differs from :authority', async () => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca: f.ca.pem, servername: 'users.svc' });
    try {
      const unknown = await h2Request(session, { ':method': 'GET', ':path': '/', ':authority': 'nobody.svc' });
      assert.equal(unknown.status, 404);
      assert.equal((JSON.parse(unknown.body) as { error: string }).error, 'unknown_service');
      const mismatch = await h2Request(session, { ':method': 'GET', ':path': '/', ':authority': 'users.svc', host: 'orders.svc' });
      assert.equal(mismatch.status, 400);
      // Held to the Host grammar: 400 from us, or (Node 24's nghttp2) the stream refused before it reaches us.
      const requestsBefore = backend.requests;
      const badAuthority = await h2Request(session, { ':method': 'GET', ':path': '/', ':authority': 'users.svc@127.0.0.2' }).then(
        (reply) => reply.status,
        (err: NodeJS.ErrnoException) => err.code,
      );
      assert.ok(badAuthority === 400 || badAuthority === 'ERR_HTTP2_STREAM_ERROR', `got ${badAuthority}`);
      assert.equal(backend.requests, requestsBefore);
      const traversal = await h2Request(session, { ':method': 'GET', ':path': '/a/%2e%2e/%2e%2e/admin', ':authority': 'users.svc' });
      assert.equal((JSON.parse(traversal.body) as BackendReply).path, '/admin', 'the same normalisation as HTTP/1.1');
      const connect = await h2Request(session, { ':method': 'CONNECT', ':authority': 'users.svc:443' });
      assert.equal(connect.status, 400);
    } finally {
      session.close();
    }
  });

  it('applies the header cap to HTTP/2 requests too (431), pseudo-headers not counted', async () => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca: f.ca.pem, servername: 'users.svc' });
    try {
      const many = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v']));
      const atCap = await h2Request(session, { ':method': 'GET', ':path': '/', ':authority': 'users.svc', ...many(100) });
      assert.equal(atCap.status, 200);
      const over = await h2Request(session, { ':method': 'GET', ':path': '/', ':authority': 'users.svc', ...many(101) });
      assert.equal(over.status, 431);
    } finally {
      session.close();
    }
  });

  it('curl --http2 gets the backend through the proxy', async () => {
    const { stdout } = await run('curl', ['-sS', '--http2', '--cacert', f.ca.certFile, '--resolve', `users.svc:${port}:127.0.0.1`, '-w', '\\n%{http_version} %{http_code}', `https://users.svc:${port}/curl`]);
    const [body, status] = stdout.split('\n');
    assert.equal(status, '2 200');
    assert.equal((JSON.parse(body) as BackendReply).path, '/curl');
  });

  it('closes a connection that floods it with streams reset at once (rapid reset), and keeps serving others', async () => {
    const flood = await rapidReset(port, f.ca.pem, 10_000);
    assert.ok(flood.goaway.includes(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM), `GOAWAY codes ${flood.goaway.join(',')}`);
    assert.ok(flood.closedAfter < 10_000, `closed after ${flood.closedAfter} streams`);
    assert.equal(await metricValue('switchboard_proxy_http2_reset_floods_total', {}), 1);
    const after = await httpsGet(port, f.ca.pem, '/after', 'users.svc');
    assert.equal(after.status, 200);
  });
});

/**
 * The attack byte for byte (a node client cannot send it: it never writes HEADERS for a stream
 * it closed first): the preface, then batches of HEADERS (GET /, END_STREAM) each followed by
 * RST_STREAM(CANCEL), until the server closes. Returns the GOAWAY codes it got.
 */
async function rapidReset(port: number, ca: Buffer, streams: number): Promise<{ goaway: number[]; closedAfter: number }> {
  const frame = (type: number, flags: number, id: number, payload: Buffer): Buffer => {
    const head = Buffer.alloc(9);
    head.writeUIntBE(payload.length, 0, 3);
    head[3] = type;
    head[4] = flags;
    head.writeUInt32BE(id, 5);
    return Buffer.concat([head, payload]);
  };
  const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'users.svc', ALPNProtocols: ['h2'] });
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('secureConnect', resolve));
  assert.equal(socket.alpnProtocol, 'h2');
  const goaway: number[] = [];
  let pending = Buffer.alloc(0);
  socket.on('data', (data: Buffer) => {
    pending = Buffer.concat([pending, data]);
    while (pending.length >= 9 && pending.length >= 9 + pending.readUIntBE(0, 3)) {
      const length = pending.readUIntBE(0, 3);
      if (pending[3] === 0x7) goaway.push(pending.readUInt32BE(9 + 4));
      pending = pending.subarray(9 + length);
    }
  });
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(0x4, 0, 0, Buffer.alloc(0))]));
  // HPACK: :method GET, :scheme https, :path / (static table), :authority as a literal.
  const authority = Buffer.from('users.svc');
  const block = Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x01, authority.length]), authority]);
  const cancel = Buffer.alloc(4);
  cancel.writeUInt32BE(http2.constants.NGHTTP2_CANCEL);
  let sent = 0;
  while (sent < streams && !socket.destroyed) {
    const frames: Buffer[] = [];
    for (let i = 0; i < 100; i++, sent++) frames.push(frame(0x1, 0x5, 2 * sent + 1, block), frame(0x3, 0, 2 * sent + 1, cancel));
    socket.write(Buffer.concat(frames));
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await closed;
  return { goaway, closedAfter: sent };
}

describe('proxy certificates: rotation, reload, bad files', () => {
  it('a rotated certificate is served to new connections while a keep-alive connection carries on', async () => {
    const f = certificates();
    const live = { certFile: `${f.ca.dir}/live.crt`, keyFile: `${f.ca.dir}/live.key` };
    copyFileSync(f.primary.certFile, live.certFile);
    copyFileSync(f.primary.keyFile, live.keyFile);
    const backend = await Backend.start('users-1');
    const harness = await ProxyHarness.start({ config: { tls: proxyConfig({ tls: { certificates: [live] } }).tls } });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await harness.serveFrom('users', [backend]);
      const { port } = harness.address;
      const first = await httpsGet(port, f.ca.pem, '/1', 'users.svc', agent);
      assert.equal(first.status, 200);
      const before = await peerCertificate(port, f.ca.pem, 'users.svc');

      // Rotation as certbot does it: new files in place (key first, then the certificate).
      const next = f.ca.issue('rotated', ['users.svc', '127.0.0.1']);
      copyFileSync(next.keyFile, live.keyFile);
      copyFileSync(next.certFile, live.certFile);
      await waitFor('the rotated certificate on new connections', async () => (await peerCertificate(port, f.ca.pem, 'users.svc')).serial !== before.serial, 10_000, 100);

      const second = await httpsGet(port, f.ca.pem, '/2', 'users.svc', agent);
      assert.equal(second.status, 200);
      assert.equal(second.reused, true, 'the keep-alive connection was not dropped');
    } finally {
      agent.destroy();
      await harness.stop();
      await backend.close();
    }
  });

  it('a reload with a broken certificate file keeps the old certificate and reports the file', async () => {
    const f = certificates();
    const live = { certFile: `${f.ca.dir}/live.crt`, keyFile: `${f.ca.dir}/live.key` };
    copyFileSync(f.primary.certFile, live.certFile);
    copyFileSync(f.primary.keyFile, live.keyFile);
    const config = proxyConfig({ tls: { certificates: [live] } });
    const harness = await ProxyHarness.start({ config: { tls: config.tls } });
    try {
      const { port } = harness.address;
      const before = await peerCertificate(port, f.ca.pem, 'users.svc');
      writeFileSync(live.certFile, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n');
      const report = harness.proxy.reconfigure(harness.config, 'svc');
      assert.deepEqual(report.applied.filter((a) => a.startsWith('proxy.tls')), []);
      assert.equal(report.failed?.length, 1);
      assert.match(report.failed?.[0] ?? '', /proxy\.tls\.certificates\[0\]\.certFile: .*live\.crt/);
      assert.equal((await peerCertificate(port, f.ca.pem, 'users.svc')).serial, before.serial);

      // A good file again: the next reload takes it.
      const next = f.ca.issue('next', ['users.svc']);
      copyFileSync(next.keyFile, live.keyFile);
      copyFileSync(next.certFile, live.certFile);
      const fixed = harness.proxy.reconfigure(harness.config, 'svc');
      assert.ok(fixed.applied.includes('proxy.tls.certificates'), JSON.stringify(fixed));
      assert.notEqual((await peerCertificate(port, f.ca.pem, 'users.svc')).serial, before.serial);
    } finally {
      await harness.stop();
    }
  });

  it('a missing or mismatched file fails at startup naming the field and the file', () => {
    const f = certificates();
    for (const [pair, field] of [
      [{ certFile: `${f.ca.dir}/absent.crt`, keyFile: f.primary.keyFile }, 'proxy.tls.certificates[0].certFile'],
      [{ certFile: f.primary.certFile, keyFile: f.exact.keyFile }, 'proxy.tls.certificates[0].keyFile'],
    ] as const) {
      assert.throws(
        () => new ProxyHarness({ config: { tls: proxyConfig({ tls: { certificates: [pair] } }).tls } }),
        (err: unknown) => isSwitchboardError(err, 'config_invalid') && err.field === field && err.message.includes(field),
      );
    }
  });

  it('the redirect listener answers 308 to the same URL over https, and refuses a bad Host', async () => {
    const f = certificates();
    const harness = await ProxyHarness.start({ config: tlsSettings(f, { redirectListen: '127.0.0.1:0' }) });
    try {
      const redirect = harness.proxy.redirectAddress;
      assert.ok(redirect !== undefined);
      const [, redirectPort] = redirect.split(':');
      const reply = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: Number(redirectPort), path: '/a/b?c=d', headers: { host: 'users.svc' } }, resolve).on('error', reject);
      });
      reply.resume();
      assert.equal(reply.statusCode, 308);
      assert.equal(reply.headers.location, `https://users.svc:${harness.address.port}/a/b?c=d`);
      const bad = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: Number(redirectPort), path: '/', headers: { host: 'evil.test/x@y' } }, resolve).on('error', reject);
      });
      bad.resume();
      assert.equal(bad.statusCode, 400);
    } finally {
      await harness.stop();
    }
  });
});
