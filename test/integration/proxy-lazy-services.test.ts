/**
 * A proxy holding a large catalog makes a service's pool, balancer, detector and limiter only
 * when the service is first used — except where its policy probes instances actively, which
 * must happen before any request. (Memory and restart time of a 10,000-service catalog.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Backend } from '../helpers/backend';
import { waitFor } from '../helpers/child';
import { instance, ProxyHarness, send } from '../helpers/proxy-harness';

describe('services made on first use', () => {
  let harness: ProxyHarness;
  let backend: Backend;
  let probed: Backend;
  const healthCheck = { enabled: true, path: '/health', interval: 50, timeout: 1_000, unhealthyThreshold: 2, healthyThreshold: 1, jitterPercent: 0 };

  before(async () => {
    [backend, probed] = await Promise.all([Backend.start('plain-1'), Backend.start('probed-1')]);
    harness = await ProxyHarness.start({ services: { probed: { healthCheck } } });
    for (let i = 0; i < 200; i++) await harness.catalog.set(`svc-${i}`, [instance(`svc-${i}`, `svc-${i}-1`, backend.port)]);
    await harness.setService('probed', [instance('probed', probed.id, probed.port)]);
  });

  after(async () => {
    await harness?.stop();
    await Promise.all([backend?.close(), probed?.close()]);
  });

  it('routes every catalog service but makes only the actively probed one before any request', async () => {
    assert.deepEqual(harness.proxy.servicesInUse(), ['probed']);
    await waitFor('a probe of the unused, probed service', () => probed.probes > 0, 5_000);
    assert.equal(probed.requests, 0);
    assert.equal(backend.requests, 0);
  });

  it('makes a service on its first request, and only that one', async () => {
    assert.equal((await send(harness, 'svc-7', '/x')).status, 200);
    assert.equal((await send(harness, 'svc-7', '/y')).status, 200);
    assert.deepEqual(harness.proxy.servicesInUse(), ['probed', 'svc-7']);
    assert.equal((await send(harness, 'nope', '/x')).status, 404, 'a name the catalog does not list is still unknown');
    assert.deepEqual(harness.proxy.servicesInUse(), ['probed', 'svc-7']);
  });

  it('a reload that turns probing on for an unused service makes it and probes it', async () => {
    const before = backend.probes;
    const next = { ...harness.config, services: { ...harness.config.services, 'svc-9': { ...harness.config.defaults, healthCheck: { ...harness.config.defaults.healthCheck, ...healthCheck } } } };
    const report = harness.proxy.reconfigure(next, 'svc');
    assert.ok(report.applied.includes('proxy.services.svc-9'), JSON.stringify(report));
    assert.deepEqual(harness.proxy.servicesInUse(), ['probed', 'svc-7', 'svc-9']);
    await waitFor('svc-9 probed', () => backend.probes > before, 5_000);
  });

  it('a service that leaves the catalog is dropped; one used after coming back is made again', async () => {
    await harness.setService('svc-7', []);
    assert.deepEqual(harness.proxy.servicesInUse(), ['probed', 'svc-9']);
    assert.equal((await send(harness, 'svc-7', '/x')).status, 404);
    await harness.setService('svc-7', [instance('svc-7', 'svc-7-2', backend.port)]);
    assert.deepEqual(harness.proxy.servicesInUse(), ['probed', 'svc-9']);
    assert.equal((await send(harness, 'svc-7', '/x')).status, 200);
    assert.deepEqual(harness.proxy.servicesInUse(), ['probed', 'svc-7', 'svc-9']);
  });
});
