/**
 * The adaptive per-try timeout against a service that is legitimately slow now and then: a
 * rare heavy request is cut and retried while tries remain, but its last try waits for the
 * overall deadline, so it is slower, not lost; a POST is never cut early.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { closeNow, listenOnLoopback } from '../helpers/http-server';
import { ProxyHarness, send } from '../helpers/proxy-harness';

describe('adaptive per-try timeout and slow requests', () => {
  let harness: ProxyHarness;
  let backend: http.Server;
  const seen = new Map<string, number>();

  before(async () => {
    backend = http.createServer((req, res) => {
      const path = `${req.method} ${req.url}`;
      seen.set(path, (seen.get(path) ?? 0) + 1);
      req.resume();
      // 800 ms: well over the learned timeout (the 250 ms floor for a service answering in ~1 ms).
      if (req.url === '/heavy') setTimeout(() => res.end('heavy'), 800);
      else res.end('fast');
    });
    const port = await listenOnLoopback(backend);
    harness = await ProxyHarness.start();
    await harness.serveFrom('mixed', [{ id: 'm1', port }]);
    for (let i = 0; i < 30; i++) assert.equal((await send(harness, 'mixed', '/fast')).status, 200);
  });

  after(async () => {
    await harness.stop();
    await closeNow(backend);
  });

  it('a heavy GET is retried while tries remain, and its last try waits: 200', async () => {
    const reply = await send(harness, 'mixed', '/heavy');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'heavy');
    assert.equal(seen.get('GET /heavy'), 3, 'two tries cut at the learned timeout, the third waited');
  });

  it('a heavy POST is never cut early: one try, 200', async () => {
    const reply = await send(harness, 'mixed', '/heavy', { method: 'POST', body: 'x' });
    assert.equal(reply.status, 200);
    assert.equal(seen.get('POST /heavy'), 1);
  });
});
