/**
 * The proxy's access log: one line per answered request with what an operator asks of it —
 * including the retry that hid a failure and the proxy's own errors — in JSON and combined
 * format, sampled (5xx always kept), and never forgeable by what a client sends.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Backend } from '../helpers/backend';
import type { AccessEntry } from '../../src/proxy/access-log/formats';
import { ProxyHarness, instance, send } from '../helpers/proxy-harness';

type Line = AccessEntry;

describe('access log', () => {
  let dir = '';
  let ok: Backend;
  let broken: Backend;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-access-'));
    [ok, broken] = await Promise.all([Backend.start('ok-1'), Backend.start('broken-1')]);
    broken.behaviour = 500;
  });
  after(async () => {
    await Promise.all([ok.close(), broken.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `traffic` through a proxy logging to a file, stops it (flushing), returns the lines. */
  async function logged(accessLog: Record<string, unknown>, traffic: (h: ProxyHarness) => Promise<void>): Promise<string[]> {
    const file = path.join(dir, `${Math.random().toString(36).slice(2)}.log`);
    const harness = await ProxyHarness.start({
      config: { accessLog: { enabled: true, format: 'json', path: file, sample: 1, ...accessLog } } as never,
      // Round robin, no ejection: every other request meets the broken instance first.
      services: { web: { latencyAware: { enabled: false }, outlierDetection: { consecutive5xx: 0, consecutiveGatewayFailure: 0 } } },
    });
    await harness.serveFrom('web', [ok, broken]);
    await harness.setService('down', [instance('down', 'down-1', ok.port, 'critical')]);
    await traffic(harness);
    await harness.stop();
    return readFileSync(file, 'utf8').trim().split('\n').filter((l) => l !== '');
  }

  it('JSON: success, a retry that hid a 500, an unknown service, no healthy instance', async () => {
    const lines = (
      await logged({}, async (h) => {
        for (let i = 0; i < 2; i++) assert.equal((await send(h, 'web', `/ok-${i}`, { headers: { 'x-request-id': `req-${i}` } })).status, 200);
        assert.equal((await send(h, 'nope', '/x')).status, 404);
        assert.equal((await send(h, 'down', '/x')).status, 503);
      })
    ).map((l) => JSON.parse(l) as Line);
    assert.equal(lines.length, 4);
    const [a, b, unknown, down] = lines;
    for (const line of [a, b]) {
      assert.equal(line.status, 200);
      assert.equal(line.service, 'web');
      assert.equal(line.upstream, 'ok-1');
      assert.equal(line.method, 'GET');
      assert.equal(line.host, 'web.svc');
      assert.equal(line.client, '127.0.0.1');
      assert.ok(line.bytesIn > 0 && line.bytesOut > 0 && line.durationMs >= 0);
      assert.ok(!Number.isNaN(Date.parse(line.time)));
    }
    assert.deepEqual([a.id, b.id].sort(), ['req-0', 'req-1']);
    assert.deepEqual([a.attempts, b.attempts].sort(), [1, 2], 'one of the two met the broken instance first and was retried');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.error, 'unknown_service');
    assert.equal(down.status, 503);
    assert.equal(down.error, 'no_healthy_upstream');
  });

  it('combined format, with client-sent quotes and bytes escaped: one line per request, fields intact', async () => {
    const lines = await logged({ format: 'combined' }, async (h) => {
      await send(h, 'web', '/a?q="x"', { headers: { 'user-agent': 'evil" 200 9999 "forged', referer: 'http://r/é' } });
    });
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/a\?q=\\x22x\\x22 HTTP\/1\.1" 200 \d+ "http:\/\/r\/\\x[0-9a-f]+" "evil\\x22 200 9999 \\x22forged" id="[^"]+" host="web\.svc" service="web" upstream="[^"]+" attempts=\d duration_ms=[\d.]+ bytes_in=\d+ error="-"$/);
  });

  it('a 12 KB header of non-ASCII bytes is logged whole, escaped, and the next request after it', async () => {
    // 12,000 bytes of é (obs-text, allowed in a header) escape to 48,000 bytes.
    const agent = 'é'.repeat(12_000);
    const lines = await logged({ format: 'combined' }, async (h) => {
      assert.equal((await send(h, 'web', '/big', { headers: { 'user-agent': agent } })).status, 200);
      assert.equal((await send(h, 'web', '/after')).status, 200);
    });
    assert.equal(lines.length, 2);
    assert.ok(lines[0].includes(`"${'\\xe9'.repeat(12_000)}"`), 'the whole agent, escaped');
    assert.match(lines[0], /"GET \/big HTTP\/1\.1" 200 /);
    assert.match(lines[1], /"GET \/after HTTP\/1\.1" 200 /);
  });

  it('sampling keeps a share of the requests, and every 5xx', async () => {
    const lines = (
      await logged({ sample: 0 }, async (h) => {
        for (let i = 0; i < 5; i++) await send(h, 'web', `/s-${i}`);
        await send(h, 'down', '/x');
      })
    ).map((l) => JSON.parse(l) as Line);
    assert.deepEqual(lines.map((l) => l.status), [503]);
  });
});
