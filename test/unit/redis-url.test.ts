import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import Redis, { Cluster } from 'ioredis';
import { createRedisConnection, redactRedisUrl } from '../../src/bus/redis-url';
import { isSwitchboardError } from '../../src/errors';

// lazyConnect: the clients are only inspected, never connected; disconnect() releases them.
const made: (Redis | Cluster)[] = [];
after(() => {
  for (const client of made) client.disconnect();
});

function connect(url: string): Redis | Cluster {
  const client = createRedisConnection(url, { lazyConnect: true }) as unknown as Redis | Cluster;
  made.push(client);
  return client;
}

describe('redis URL forms', () => {
  it('redis:// and rediss:// go to one server, with credentials, db and TLS', () => {
    const plain = connect('redis://127.0.0.1:7001/2') as Redis;
    assert.ok(plain instanceof Redis);
    assert.deepEqual([plain.options.host, plain.options.port, plain.options.db], ['127.0.0.1', 7001, 2]);
    const tls = connect('rediss://user:p%40ss@cache.internal:6380') as Redis;
    assert.deepEqual([tls.options.username, tls.options.password, tls.options.port], ['user', 'p@ss', 6380]);
    assert.ok(tls.options.tls);
  });

  it('redis+sentinel:// lists sentinels, the master name and an optional db', () => {
    const r = connect('redis+sentinel://:secret@s1:26380,s2,[::1]:26381/mymaster/3') as Redis;
    assert.deepEqual(r.options.sentinels, [
      { host: 's1', port: 26380 },
      { host: 's2', port: 26379 },
      { host: '::1', port: 26381 },
    ]);
    assert.deepEqual([r.options.name, r.options.db, r.options.password], ['mymaster', 3, 'secret']);
    assert.equal(r.options.enableTLSForSentinelMode, false);
  });

  it('redis+cluster:// becomes a Redis.Cluster over the seed nodes', () => {
    const c = connect('rediss+cluster://u:pw@n1:7000,n2:7001') as Cluster;
    assert.ok(c instanceof Cluster);
    const seeds = (c as unknown as { startupNodes: unknown[] }).startupNodes;
    assert.deepEqual(seeds, [
      { host: 'n1', port: 7000 },
      { host: 'n2', port: 7001 },
    ]);
    assert.deepEqual([c.options.redisOptions?.username, c.options.redisOptions?.password], ['u', 'pw']);
    assert.ok(c.options.redisOptions?.tls);
  });

  it('rejects unknown schemes and incomplete URLs with config_invalid', () => {
    for (const url of ['http://x:1', 'redis+sentinel://s1:26379', 'redis+cluster://n1:7000/1', 'redis+sentinel://s1:99999/m']) {
      assert.throws(() => connect(url), (err: unknown) => isSwitchboardError(err, 'config_invalid'), url);
    }
  });

  it('logs never show the password', () => {
    assert.equal(redactRedisUrl('redis://user:hunter2@h:1/0'), 'redis://user:***@h:1/0');
    assert.equal(redactRedisUrl('redis+sentinel://:hunter2@a:1,b:2/m'), 'redis+sentinel://:***@a:1,b:2/m');
  });
});
