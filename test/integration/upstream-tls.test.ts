/**
 * HTTPS upstreams: an instance registered with `Meta: { scheme: https }` is reached over TLS and
 * its certificate verified against the service's CA; expired and self-signed certificates are
 * refused (502), unless one service says `skipVerify`; mTLS upstreams get the client
 * certificate; active probes use HTTPS too. Certificates come from openssl.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { isSwitchboardError } from '../../src/errors';
import { Backend, type BackendReply } from '../helpers/backend';
import { TestCA, selfSigned, type CertFiles } from '../helpers/certs';
import { ProxyHarness, instance, send, waitFor } from '../helpers/proxy-harness';

function httpsInstance(service: string, id: string, port: number) {
  return { ...instance(service, id, port), meta: { scheme: 'https' } };
}

function serverTls(files: CertFiles, extra: Record<string, unknown> = {}) {
  return { tls: { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile), ...extra } };
}

describe('HTTPS upstreams', () => {
  let ca: TestCA;
  let good: Backend;
  let expired: Backend;
  let selfSignedBackend: Backend;
  let mtls: Backend;
  let harness: ProxyHarness;
  let client: CertFiles;

  before(async () => {
    ca = TestCA.create();
    good = await Backend.start('good', serverTls(ca.issue('good', ['127.0.0.1'])));
    expired = await Backend.start('expired', serverTls(ca.issue('expired', ['127.0.0.1'], { expired: true })));
    selfSignedBackend = await Backend.start('self', serverTls(selfSigned(ca.dir, 'self', ['127.0.0.1'])));
    // mTLS: only clients with a certificate from our CA get in.
    mtls = await Backend.start('mtls', serverTls(ca.issue('mtls', ['127.0.0.1']), { requestCert: true, rejectUnauthorized: true, ca: ca.pem }));
    client = ca.issue('proxy-client', ['switchboard-proxy'], { client: true });
    harness = await ProxyHarness.start({
      services: {
        good: { upstreamTls: { caFile: ca.certFile }, healthCheck: { enabled: true, path: '/health', interval: 200, timeout: 1_000, jitterPercent: 0 } },
        expired: { upstreamTls: { caFile: ca.certFile }, retries: { attempts: 0 } },
        self: { upstreamTls: { caFile: ca.certFile }, retries: { attempts: 0 } },
        trusting: { upstreamTls: { skipVerify: true } },
        mtls: { upstreamTls: { caFile: ca.certFile, certFile: client.certFile, keyFile: client.keyFile } },
        nocert: { upstreamTls: { caFile: ca.certFile }, retries: { attempts: 0 } },
      },
    });
    await harness.setService('good', [httpsInstance('good', 'good-1', good.port)]);
    await harness.setService('expired', [httpsInstance('expired', 'expired-1', expired.port)]);
    await harness.setService('self', [httpsInstance('self', 'self-1', selfSignedBackend.port)]);
    await harness.setService('trusting', [httpsInstance('trusting', 'self-1', selfSignedBackend.port)]);
    await harness.setService('mtls', [httpsInstance('mtls', 'mtls-1', mtls.port)]);
    await harness.setService('nocert', [httpsInstance('nocert', 'mtls-1', mtls.port)]);
  });

  after(async () => {
    await harness.stop();
    for (const b of [good, expired, selfSignedBackend, mtls]) await b.close();
  });

  it('reaches an instance registered with Meta scheme=https over TLS, verified against the CA', async () => {
    const reply = await send(harness, 'good', '/over-tls');
    assert.equal(reply.status, 200);
    assert.equal((JSON.parse(reply.body) as BackendReply).path, '/over-tls');
  });

  it('probes an HTTPS instance over HTTPS', async () => {
    await waitFor('an active probe on the HTTPS instance', () => good.probes >= 2, 5_000);
    assert.equal(harness.upstream('good', 'good-1').probeFailing, false);
  });

  it('refuses an expired certificate and a self-signed one (502)', async () => {
    for (const service of ['expired', 'self']) {
      const reply = await send(harness, service, '/');
      assert.equal(reply.status, 502, `${service}: ${reply.body}`);
      assert.equal((JSON.parse(reply.body) as { error: string }).error, 'upstream_unreachable');
    }
    assert.equal(expired.requests + selfSignedBackend.requests, 0, 'no request reached an unverified upstream');
  });

  it('accepts a self-signed certificate only for the one service whose policy says skipVerify', async () => {
    const reply = await send(harness, 'trusting', '/anyway');
    assert.equal(reply.status, 200);
    assert.equal((JSON.parse(reply.body) as BackendReply).backend, 'self');
  });

  it('shows the client certificate to an mTLS upstream; without one the upstream refuses', async () => {
    assert.equal((await send(harness, 'mtls', '/with-cert')).status, 200);
    const refused = await send(harness, 'nocert', '/without');
    assert.equal(refused.status, 502);
    assert.equal(mtls.bodies.length, 1, 'only the request with a client certificate got in');
  });

  it('an upstreamTls file that cannot be read fails at startup, naming the service and the field', () => {
    assert.throws(
      () => new ProxyHarness({ services: { pay: { upstreamTls: { caFile: `${ca.dir}/absent.pem` } } } }),
      (err: unknown) => isSwitchboardError(err, 'config_invalid') && err.field === 'proxy.services.pay.upstreamTls.caFile',
    );
  });
});
