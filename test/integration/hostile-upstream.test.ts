/**
 * A backend that answers with bytes node's `writeHead` would throw on, or that cannot be
 * relayed faithfully. For every case: the process stays up (an uncaught exception fails this
 * file), the client gets the documented status, the upstream saw at most one request, and the
 * next request on the same client connection is answered correctly.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { closeNow, listenOnLoopback } from '../helpers/http-server';
import { metricValue, ProxyHarness } from '../helpers/proxy-harness';
import { RawClient, RawUpstream, type RawResponse } from '../helpers/raw-http';

interface Case {
  name: string;
  /** What the upstream writes (then closes its connection when `close`). */
  response: string;
  close?: boolean;
  /** The status the client gets; 0 = the client's connection is cut (bytes had gone out). */
  status: number;
  error?: string;
  check?: (reply: RawResponse) => void;
}

const CASES: Case[] = [
  {
    name: 'Trailer together with Content-Length: relayed without Trailer',
    response: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTrailer: X-Checksum\r\n\r\nok',
    status: 200,
    check: (r) => {
      assert.equal(r.body.toString(), 'ok');
      assert.equal(r.headers.trailer, undefined);
    },
  },
  { name: '204 carrying Trailer', response: 'HTTP/1.1 204 No Content\r\nTrailer: X-Checksum\r\n\r\n', status: 204, check: (r) => assert.equal(r.headers.trailer, undefined) },
  { name: '304 carrying Trailer', response: 'HTTP/1.1 304 Not Modified\r\nTrailer: X-Checksum\r\n\r\n', status: 304, check: (r) => assert.equal(r.headers.trailer, undefined) },
  { name: 'a control character in the reason phrase', response: 'HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok', status: 502, error: 'upstream_invalid_response' },
  { name: 'DEL in the reason phrase', response: 'HTTP/1.1 200 O\x7fK\r\nContent-Length: 2\r\n\r\nok', status: 502, error: 'upstream_invalid_response' },
  { name: 'status 000', response: 'HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n', status: 502, error: 'upstream_invalid_response' },
  { name: 'status 099', response: 'HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n', status: 502, error: 'upstream_invalid_response' },
  { name: '101 to a request that asked for no upgrade', response: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', status: 502, error: 'upstream_invalid_response' },
  { name: 'an unsolicited 100 Continue', response: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', status: 502, error: 'upstream_invalid_response' },
  {
    name: 'a 1xx other than 101/103 is informational: the final response after it is relayed',
    response: 'HTTP/1.1 150 Odd\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    status: 200,
    check: (r) => assert.equal(r.body.toString(), 'ok'),
  },
  { name: 'a 1xx and then nothing (connection closed)', response: 'HTTP/1.1 150 Odd\r\n\r\n', close: true, status: 502, error: 'upstream_unreachable' },
  { name: 'Content-Length and Transfer-Encoding together', response: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', status: 502, error: 'upstream_invalid_response' },
  { name: 'two different Content-Lengths', response: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!', status: 502, error: 'upstream_invalid_response' },
  { name: 'a NUL in a header value', response: 'HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 2\r\n\r\nok', status: 502, error: 'upstream_invalid_response' },
  { name: 'a space inside a header name', response: 'HTTP/1.1 200 OK\r\nX Bad: 1\r\nContent-Length: 2\r\n\r\nok', status: 502, error: 'upstream_invalid_response' },
  { name: 'not HTTP at all', response: 'HELLO THERE\r\n\r\n', status: 502, error: 'upstream_invalid_response' },
  { name: 'response headers past 16 KiB', response: `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(20_000)}\r\nContent-Length: 2\r\n\r\nok`, status: 502, error: 'upstream_invalid_response' },
  {
    name: 'Transfer-Encoding: identity (close-delimited): re-framed for the keep-alive client',
    response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nhello',
    close: true,
    status: 200,
    check: (r) => {
      assert.equal(r.body.toString(), 'hello');
      assert.notEqual(r.headers['transfer-encoding'], 'identity');
    },
  },
  {
    name: 'hop-by-hop headers and whatever Connection names are not relayed',
    response:
      'HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nX-Internal: secret\r\nKeep-Alive: timeout=77\r\nProxy-Authenticate: Basic\r\nUpgrade: h2c\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok',
    status: 200,
    check: (r) => {
      for (const name of ['x-internal', 'proxy-authenticate', 'upgrade']) assert.equal(r.headers[name], undefined, name);
      assert.notEqual(r.headers['keep-alive'], 'timeout=77');
      assert.equal(r.headers['x-kept'], 'yes');
    },
  },
  { name: 'a body shorter than its Content-Length: the client is cut', response: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok', close: true, status: 0 },
];

describe('hostile upstream responses', () => {
  let harness: ProxyHarness;
  let hostile: RawUpstream;
  let good: http.Server;

  before(async () => {
    hostile = await RawUpstream.start();
    good = http.createServer((_req, res) => res.end('fine'));
    const goodPort = await listenOnLoopback(good);
    // No retries for the hostile service: each case must reach the upstream at most once.
    harness = await ProxyHarness.start({ services: { hostile: { retries: { attempts: 0 } } } });
    await harness.serveFrom('hostile', [{ id: 'h1', port: hostile.port }]);
    await harness.serveFrom('good', [{ id: 'g1', port: goodPort }]);
  });

  after(async () => {
    await harness.stop();
    await hostile.close();
    await closeNow(good);
  });

  for (const c of CASES) {
    it(`${c.name} → ${c.status === 0 ? 'cut connection' : c.status}`, async () => {
      hostile.respond = () => ({ bytes: c.response, close: c.close });
      const before = hostile.requests.length;
      let client = await RawClient.connect(harness.address.port);
      try {
        client.write('GET /thing HTTP/1.1\r\nHost: hostile.svc\r\n\r\n');
        if (c.status === 0) {
          await client.waitClosed();
          client = await RawClient.connect(harness.address.port);
        } else {
          const reply = await client.read();
          assert.equal(reply.status, c.status);
          if (c.error !== undefined) assert.equal(JSON.parse(reply.body.toString()).error, c.error);
          c.check?.(reply);
        }
        assert.ok(hostile.requests.length - before <= 1, `the upstream saw ${hostile.requests.length - before} requests`);
        const next = await client.exchange('GET /next HTTP/1.1\r\nHost: good.svc\r\n\r\n');
        assert.equal(next.status, 200);
        assert.equal(next.body.toString(), 'fine');
      } finally {
        client.close();
      }
    });
  }

  it('counts refused responses in /metrics', async () => {
    const count = await metricValue('switchboard_proxy_upstream_errors_total', { service: 'hostile', error: 'upstream_invalid_response' });
    assert.ok(count >= CASES.filter((c) => c.error === 'upstream_invalid_response').length, `counted ${count}`);
  });

  it('a node backend calling res.addTrailers(), to an HTTP/1.0 client: relayed without trailers', async () => {
    const backend = http.createServer((_req, res) => {
      res.setHeader('Trailer', 'X-Checksum');
      res.write('part');
      res.addTrailers({ 'X-Checksum': 'abc' });
      res.end();
    });
    const port = await listenOnLoopback(backend);
    await harness.serveFrom('trailers', [{ id: 't1', port }]);
    const client = await RawClient.connect(harness.address.port);
    try {
      client.write('GET / HTTP/1.0\r\nHost: trailers.svc\r\n\r\n');
      const reply = await client.read();
      assert.equal(reply.status, 200);
      assert.equal(reply.headers.trailer, undefined);
      assert.equal(reply.body.toString(), 'part');
      // And to an HTTP/1.1 client, re-chunked, on a connection that stays usable.
      const client11 = await RawClient.connect(harness.address.port);
      const chunked = await client11.exchange('GET / HTTP/1.1\r\nHost: trailers.svc\r\n\r\n');
      assert.equal(chunked.body.toString(), 'part');
      assert.equal((await client11.exchange('GET / HTTP/1.1\r\nHost: good.svc\r\n\r\n')).status, 200);
      client11.close();
    } finally {
      client.close();
      await closeNow(backend);
    }
  });
});
