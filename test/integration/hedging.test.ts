/**
 * Hedged tries (retries.hedge): a try that passes its per-try timeout gets a second one on
 * another instance beside it; the first answer wins and the other try is cancelled. Only for
 * idempotent, replayable requests; a POST is never sent twice.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ProxyHarness, metricValue, send, waitFor } from '../helpers/proxy-harness';
import { Backend } from '../helpers/backend';

describe('hedging', () => {
  let harness: ProxyHarness;
  let hung: Backend;
  let healthy: Backend;
  const service = 'hedged';

  before(async () => {
    [hung, healthy] = await Promise.all([Backend.start('hung'), Backend.start('healthy')]);
    harness = await ProxyHarness.start({
      // Ejection and latency weights off: the hung instance keeps half of round robin.
      services: {
        [service]: {
          retries: { hedge: true, perTryTimeout: 100 },
          outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 0 },
          latencyAware: { enabled: false },
        },
      },
    });
    await harness.serveFrom(service, [hung, healthy]);
    hung.behaviour = 'hang';
  });

  after(async () => {
    await harness.stop();
    await Promise.all([hung.close(), healthy.close()]);
  });

  it('a GET that lands on a hung instance is answered by the hedge; the hung try is cancelled', async () => {
    const hedgesBefore = await metricValue('switchboard_proxy_hedges_total', { service });
    for (let i = 0; i < 6; i++) {
      const reply = await send(harness, service, `/get-${i}`);
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['x-backend'], 'healthy');
    }
    const hedges = (await metricValue('switchboard_proxy_hedges_total', { service })) - hedgesBefore;
    assert.equal(hedges, hung.requests, 'every request that reached the hung instance was hedged');
    assert.equal(hedges, 3, 'round robin sent every other request to the hung instance');
    assert.equal(await metricValue('switchboard_proxy_hedges_won_total', { service }), hedges);
    assert.ok((await metricValue('switchboard_proxy_hung_attempts_total', { service })) >= hedges, 'the losers count as hung');
    // The losing tries were cancelled: nothing in flight, their connections closed.
    assert.equal(harness.upstream(service, 'hung').inFlight, 0);
    await waitFor('the hung tries to be cut', () => hung.closedByProxy === hung.requests, 5_000);
  });

  it('a POST is never hedged: it fails at its per-try timeout on the hung instance, sent once', async () => {
    const hedgesBefore = await metricValue('switchboard_proxy_hedges_total', { service });
    const healthyBefore = healthy.requests;
    const hungBefore = hung.requests;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await send(harness, service, `/post-${i}`, { method: 'POST', body: 'x' })).status);
    const toHung = hung.requests - hungBefore;
    assert.equal(healthy.requests - healthyBefore + toHung, 4, 'each POST reached one instance once');
    assert.ok(toHung >= 1, 'round robin sent some to the hung instance');
    assert.equal(statuses.filter((s) => s === 504).length, toHung);
    assert.equal(await metricValue('switchboard_proxy_hedges_total', { service }), hedgesBefore);
  });
});
