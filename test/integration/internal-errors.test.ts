/**
 * Defence in depth: an exception of ours while handling one request fails that request only
 * (500 internal_error before a response started, a cut connection after), is logged with the
 * request id and counted, and never reaches the process (which would fail this file).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Exchange } from '../../src/proxy/forward/dispatch';
import { Service } from '../../src/proxy/service';
import { closeNow, listenOnLoopback } from '../helpers/http-server';
import { metricValue, ProxyHarness, send } from '../helpers/proxy-harness';
import { RawClient } from '../helpers/raw-http';

describe('an exception while handling one request', () => {
  let harness: ProxyHarness;
  let backend: http.Server;
  const logged: Array<Record<string, unknown>> = [];

  before(async () => {
    backend = http.createServer((_req, res) => res.end('fine'));
    const port = await listenOnLoopback(backend);
    const logger = {
      child: () => logger,
      isLevelEnabled: () => false,
      error: (obj: Record<string, unknown>) => logged.push(obj),
      warn: () => undefined,
      info: () => undefined,
      debug: () => undefined,
    };
    harness = await ProxyHarness.start({ logger: logger as never });
    await harness.serveFrom('users', [{ id: 'u1', port }]);
  });

  after(async () => {
    await harness.stop();
    await closeNow(backend);
  });

  it('before the response: that request gets 500 internal_error with its id; the next one is served', async () => {
    const pick = Service.prototype.pick;
    Service.prototype.pick = function (request, exclude) {
      if ((request as http.IncomingMessage).url === '/boom') throw new Error('bug in a balancer');
      return pick.call(this, request, exclude);
    };
    try {
      const before = await metricValue('switchboard_proxy_internal_errors_total', { service: 'users' });
      const reply = await send(harness, 'users', '/boom', { headers: { 'x-request-id': 'req-boom' } });
      assert.equal(reply.status, 500);
      assert.equal(JSON.parse(reply.body).error, 'internal_error');
      assert.equal(reply.headers['x-request-id'], 'req-boom');
      assert.equal(await metricValue('switchboard_proxy_internal_errors_total', { service: 'users' }), before + 1);
      assert.ok(logged.some((l) => l.requestId === 'req-boom'), 'logged with the request id');
      assert.equal((await send(harness, 'users', '/fine')).status, 200);
    } finally {
      Service.prototype.pick = pick;
    }
  });

  it('while relaying the body: the client is cut, the proxy keeps serving', async () => {
    const onData = Exchange.prototype.onAttemptData;
    Exchange.prototype.onAttemptData = function () {
      throw new Error('bug while relaying');
    };
    try {
      const client = await RawClient.connect(harness.address.port);
      client.write('GET /x HTTP/1.1\r\nHost: users.svc\r\nX-Request-Id: req-body\r\n\r\n');
      await client.waitClosed();
      assert.ok(logged.some((l) => l.requestId === 'req-body'));
    } finally {
      Exchange.prototype.onAttemptData = onData;
    }
    assert.equal((await send(harness, 'users', '/after')).status, 200);
  });
});
