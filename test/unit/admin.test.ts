import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../src/log';
import { type AdminServer, startAdmin } from '../../src/roles/admin';
import { request } from '../helpers/switchboard-process';

describe('admin listener', () => {
  let ready = false;
  let admin: AdminServer;

  before(async () => {
    admin = await startAdmin({ listen: '127.0.0.1:0', isReady: () => ready, logger: silentLogger() });
  });
  after(() => admin?.close());

  const url = (path: string): string => `http://${admin.address}${path}`;

  test('binds the requested host and reports the real port', () => {
    assert.match(admin.address, /^127\.0\.0\.1:[1-9]\d*$/);
  });

  test('/readyz is 503 with a JSON error until ready, then 200', async () => {
    ready = false;
    const before = await request(url('/readyz'));
    assert.equal(before.status, 503);
    assert.equal(before.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(before.body), { error: 'not_ready' });
    ready = true;
    assert.equal((await request(url('/readyz'))).status, 200);
  });

  test('/healthz is 200 whether or not the role is ready', async () => {
    ready = false;
    assert.equal((await request(url('/healthz'))).status, 200);
  });

  test('/metrics is Prometheus text with process metrics', async () => {
    const res = await request(url('/metrics'));
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(res.body, /^process_cpu_seconds_total /m);
  });

  test('unknown paths are 404 and other methods 405, as JSON', async () => {
    const missing = await request(url('/nope'));
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.body).error, 'not_found');
    const post = await request(url('/metrics'), { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });

  test('a busy port rejects with EADDRINUSE so the caller can name its flag', async () => {
    await assert.rejects(
      startAdmin({ listen: admin.address, isReady: () => true, logger: silentLogger() }),
      (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE',
    );
  });
});
