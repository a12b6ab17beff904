import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { waitFor } from '../helpers/child';
import { type Harness, type Reply, get, ok, put, startHarness } from './harness';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function setup(options: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
  h = await startHarness(options);
  return h;
}

async function del(harness: Harness, url: string): Promise<Reply> {
  const response = await harness.app.inject({ method: 'DELETE', url });
  let json: unknown;
  try {
    json = JSON.parse(response.body);
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, headers: response.headers, body: response.body, json, index: Number(response.headers['x-consul-index']) };
}

interface Entry {
  LockIndex: number;
  Key: string;
  Flags: number;
  Value: string | null;
  CreateIndex: number;
  ModifyIndex: number;
}

describe('KV store (/v1/kv)', () => {
  it('PUT stores any bytes as the value (never parsed as JSON), GET answers Consul\'s entry with base64 Value', async () => {
    const harness = await setup();
    const put1 = ok(await put(harness.app, '/v1/kv/config/app/name?flags=42', 'not { json'));
    assert.equal(put1.body, 'true');
    const got = ok(await get(harness.app, '/v1/kv/config/app/name'));
    const [entry] = got.json as Entry[];
    assert.deepEqual(Object.keys(entry), ['LockIndex', 'Key', 'Flags', 'Value', 'CreateIndex', 'ModifyIndex']);
    assert.equal(entry.Key, 'config/app/name');
    assert.equal(entry.Flags, 42);
    assert.equal(Buffer.from(entry.Value as string, 'base64').toString(), 'not { json');
    assert.equal(got.index, entry.ModifyIndex);
    assert.equal(got.headers['x-consul-knownleader'], 'true');
    const raw = ok(await get(harness.app, '/v1/kv/config/app/name?raw'));
    assert.equal(raw.body, 'not { json');
  });

  it('stores binary values byte for byte, an empty value reads as Value null', async () => {
    const harness = await setup();
    const bytes = Buffer.from([0, 1, 2, 255, 254, 0x0a, 0x0d]);
    ok(await harness.app.inject({ method: 'PUT', url: '/v1/kv/bin', payload: bytes, headers: { 'content-type': 'application/octet-stream' } }).then((r) => ({ status: r.statusCode, body: r.body }) as Reply));
    const [entry] = ok(await get(harness.app, '/v1/kv/bin')).json as Entry[];
    assert.deepEqual(Buffer.from(entry.Value as string, 'base64'), bytes);
    ok(await put(harness.app, '/v1/kv/empty'));
    const [empty] = ok(await get(harness.app, '/v1/kv/empty')).json as Entry[];
    assert.equal(empty.Value, null);
  });

  it('a missing key is 404 with an empty body and the X-Consul-Index header', async () => {
    const harness = await setup();
    const missing = await get(harness.app, '/v1/kv/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.body, '');
    assert.ok(missing.index >= 1);
    assert.equal((await get(harness.app, '/v1/kv/nope?recurse')).status, 404);
    assert.equal((await get(harness.app, '/v1/kv/nope?keys')).status, 404);
  });

  it('?recurse lists a prefix in key order, ?keys its keys, ?separator folds them at the next separator', async () => {
    const harness = await setup();
    for (const key of ['app/b', 'app/a', 'app/sub/x', 'app/sub/y', 'other']) ok(await put(harness.app, `/v1/kv/${key}`, key));
    const tree = ok(await get(harness.app, '/v1/kv/app/?recurse')).json as Entry[];
    assert.deepEqual(tree.map((e) => e.Key), ['app/a', 'app/b', 'app/sub/x', 'app/sub/y']);
    assert.deepEqual(ok(await get(harness.app, '/v1/kv/app/?keys')).json, ['app/a', 'app/b', 'app/sub/x', 'app/sub/y']);
    assert.deepEqual(ok(await get(harness.app, '/v1/kv/app/?keys&separator=/')).json, ['app/a', 'app/b', 'app/sub/']);
    assert.deepEqual(ok(await get(harness.app, '/v1/kv/?keys&separator=/')).json, ['app/', 'other']);
  });

  it('?cas=0 creates only; ?cas=<ModifyIndex> updates only at that index', async () => {
    const harness = await setup();
    assert.equal(ok(await put(harness.app, '/v1/kv/lock?cas=0', 'first')).body, 'true');
    assert.equal(ok(await put(harness.app, '/v1/kv/lock?cas=0', 'second')).body, 'false');
    const [entry] = ok(await get(harness.app, '/v1/kv/lock')).json as Entry[];
    assert.equal(ok(await put(harness.app, `/v1/kv/lock?cas=${entry.ModifyIndex + 1}`, 'stale')).body, 'false');
    assert.equal(ok(await put(harness.app, `/v1/kv/lock?cas=${entry.ModifyIndex}`, 'third')).body, 'true');
    assert.equal(ok(await get(harness.app, '/v1/kv/lock?raw')).body, 'third');
    const [after] = ok(await get(harness.app, '/v1/kv/lock')).json as Entry[];
    assert.equal(after.CreateIndex, entry.CreateIndex);
    assert.ok(after.ModifyIndex > entry.ModifyIndex);
    assert.equal(ok(await del(harness, `/v1/kv/lock?cas=${entry.ModifyIndex}`)).body, 'false');
    assert.equal(ok(await del(harness, `/v1/kv/lock?cas=${after.ModifyIndex}`)).body, 'true');
    assert.equal((await get(harness.app, '/v1/kv/lock')).status, 404);
  });

  it('DELETE removes one key, or a whole prefix with ?recurse (more keys than one etcd transaction takes)', async () => {
    const harness = await setup();
    for (let i = 0; i < 150; i++) ok(await put(harness.app, `/v1/kv/many/k${String(i).padStart(3, '0')}`, 'v'));
    ok(await put(harness.app, '/v1/kv/manyother', 'stays'));
    ok(await del(harness, '/v1/kv/many/k000'));
    assert.equal((await get(harness.app, '/v1/kv/many/k000')).status, 404);
    ok(await del(harness, '/v1/kv/many/?recurse'));
    assert.equal((await get(harness.app, '/v1/kv/many/?recurse')).status, 404);
    assert.equal(ok(await get(harness.app, '/v1/kv/manyother?raw')).body, 'stays');
  });

  it('blocking queries wake on a change to the key (a delete too), not on other keys', async () => {
    const harness = await setup();
    ok(await put(harness.app, '/v1/kv/watched', 'v1'));
    const first = ok(await get(harness.app, '/v1/kv/watched'));
    const blocked = get(harness.app, `/v1/kv/watched?index=${first.index}&wait=30s`);
    await waitFor('the query to park', () => harness.view.pendingWaits === 1);
    ok(await put(harness.app, '/v1/kv/unrelated', 'x'));
    ok(await put(harness.app, '/v1/kv/watchedsibling', 'x'));
    assert.equal(harness.view.pendingWaits, 1, 'other keys do not wake it');
    ok(await put(harness.app, '/v1/kv/watched', 'v2'));
    const woken = ok(await blocked);
    assert.ok(woken.index > first.index);
    assert.equal(Buffer.from((woken.json as Entry[])[0].Value as string, 'base64').toString(), 'v2');

    const deleted = get(harness.app, `/v1/kv/watched?index=${woken.index}&wait=30s`);
    await waitFor('the query to park', () => harness.view.pendingWaits === 1);
    ok(await del(harness, '/v1/kv/watched'));
    const gone = await deleted;
    assert.equal(gone.status, 404);
    assert.ok(gone.index > woken.index, 'a delete moves the index');
  });

  it('blocking queries on a prefix wake on any key under it and time out with the same index', async () => {
    const harness = await setup();
    ok(await put(harness.app, '/v1/kv/tree/a', '1'));
    const first = ok(await get(harness.app, '/v1/kv/tree/?recurse'));
    const timedOut = ok(await get(harness.app, `/v1/kv/tree/?recurse&index=${first.index}&wait=50ms`));
    assert.equal(timedOut.index, first.index);
    const blocked = get(harness.app, `/v1/kv/tree/?recurse&index=${first.index}&wait=30s`);
    await waitFor('the query to park', () => harness.view.pendingWaits === 1);
    ok(await put(harness.app, '/v1/kv/tree/b/c', '2'));
    const woken = ok(await blocked);
    assert.deepEqual((woken.json as Entry[]).map((e) => e.Key), ['tree/a', 'tree/b/c']);
  });

  it('refuses bad input by field: no key, bad flags/cas, sessions (501), a value over 512 KiB (413)', async () => {
    const harness = await setup();
    const noKey = await put(harness.app, '/v1/kv/', 'x');
    assert.equal(noKey.status, 400);
    assert.equal((noKey.json as { field: string }).field, 'key');
    assert.equal(((await put(harness.app, '/v1/kv/a?flags=-1', 'x')).json as { field: string }).field, 'flags');
    assert.equal(((await put(harness.app, '/v1/kv/a?flags=18446744073709551616', 'x')).json as { field: string }).field, 'flags');
    assert.equal(((await put(harness.app, '/v1/kv/a?cas=x', 'x')).json as { field: string }).field, 'cas');
    const session = await put(harness.app, '/v1/kv/a?acquire=abc', 'x');
    assert.equal(session.status, 501);
    assert.equal((session.json as { error: string }).error, 'not_implemented');
    const big = await put(harness.app, '/v1/kv/big', Buffer.alloc(512 * 1024 + 1, 0x61));
    assert.equal(big.status, 413);
    ok(await put(harness.app, '/v1/kv/fits', Buffer.alloc(512 * 1024, 0x61)));
    assert.equal((await get(harness.app, '/v1/kv/big')).status, 404, 'nothing stored');
  });

  it('keys with percent-encoded characters round-trip', async () => {
    const harness = await setup();
    ok(await put(harness.app, '/v1/kv/space%20and%2Fslash', 'v'));
    const [entry] = ok(await get(harness.app, '/v1/kv/space%20and%2Fslash')).json as Entry[];
    assert.equal(entry.Key, 'space and/slash');
  });

  it('ACL key and key_prefix rules: reads filtered, writes refused', async () => {
    const harness = await setup({
      acl: {
        enabled: true,
        defaultPolicy: 'deny',
        tokens: { initialManagement: 'root-token-0000000000' },
        policies: [{ name: 'app', rules: 'key_prefix "app/" { policy = "write" } key "shared" { policy = "read" }', description: '' }],
        staticTokens: [{ secret: 'app-token-00000000000', description: '', policies: ['app'], serviceIdentities: [] }],
      },
    });
    const root = '?token=root-token-0000000000';
    const app = 'token=app-token-00000000000';
    ok(await put(harness.app, `/v1/kv/shared${root}`, 's'));
    ok(await put(harness.app, `/v1/kv/secret${root}`, 'x'));
    ok(await put(harness.app, `/v1/kv/app/one?${app}`, '1'));
    assert.equal((await put(harness.app, `/v1/kv/shared?${app}`, 'no')).status, 403);
    assert.equal((await get(harness.app, `/v1/kv/secret?${app}`)).status, 403);
    const listed = ok(await get(harness.app, `/v1/kv/?recurse&${app}`));
    assert.deepEqual((listed.json as Entry[]).map((e) => e.Key), ['app/one', 'shared']);
    assert.equal(listed.headers['x-consul-results-filtered-by-acls'], 'true');
  });
});
