/**
 * The registry API port against clients that hold on: a body dripped byte by byte is cut at
 * api.requestTimeout, and one address cannot hold more than api.maxConnsPerClient connections.
 * Raw sockets, byte for byte.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { LocalBus } from '../../src/bus/local-bus';
import { silentLogger } from '../../src/log';
import { Registry } from '../../src/registry/registry';
import { MemoryStore } from '../helpers/memory-store';
import { RawClient } from '../helpers/raw-http';
import { registrySettings } from '../helpers/registry-fixtures';

describe('registry API clients', () => {
  let store: MemoryStore;
  let registry: Registry;
  let port: number;

  // A registry per test: connection counts must not carry over from one test to the next.
  beforeEach(async () => {
    store = new MemoryStore();
    await store.open();
    registry = new Registry({ store, bus: new LocalBus(), logger: silentLogger(), ...registrySettings({ requestTimeout: 1_000, maxConnsPerClient: 3 }) });
    await registry.start();
    port = Number(registry.address.split(':').pop());
  });

  afterEach(async () => {
    await registry.stop();
    await store.close();
  });

  it('a body dripped a byte at a time is cut at the request timeout, and nothing is registered', async () => {
    const client = await RawClient.connect(port);
    const body = JSON.stringify({ Name: 'slow', Port: 80 });
    client.write(`PUT /v1/agent/service/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length + 50}\r\n\r\n`);
    let sent = 0;
    const drip = setInterval(() => {
      if (sent < body.length) client.write(body[sent++]);
    }, 200);
    try {
      // Well before the body could be complete (~4 s at this pace, plus 50 bytes never sent).
      await client.waitClosed(6_000);
    } finally {
      clearInterval(drip);
      client.close();
    }
    assert.ok(sent < body.length, `only ${sent} of ${body.length} bytes went out before the cut`);
    assert.equal(registry.view.instance('slow'), undefined);
  });

  it('one address gets at most maxConnsPerClient connections: the next is answered 429 and closed', async () => {
    const held = await Promise.all([1, 2, 3].map(() => RawClient.connect(port)));
    try {
      for (const c of held) assert.equal((await c.exchange('GET /v1/status/leader HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')).status, 200);
      const extra = await RawClient.connect(port);
      const reply = await extra.read();
      assert.equal(reply.status, 429);
      assert.equal(JSON.parse(reply.body.toString()).error, 'too_many_requests');
      await extra.waitClosed();
      extra.close();
      // The ones it holds still work.
      assert.equal((await held[0].exchange('GET /v1/status/leader HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')).status, 200);
    } finally {
      // Closed by the client, then by the server (it sees the end first): then they are given back.
      for (const c of held) c.socket.end();
      await Promise.all(held.map((c) => c.waitClosed()));
    }
    const again = await RawClient.connect(port);
    assert.equal((await again.exchange('GET /v1/status/leader HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')).status, 200);
    again.close();
  });
});
