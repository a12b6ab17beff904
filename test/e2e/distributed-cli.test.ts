/**
 * The `registry` and `proxy` roles on the command line: --help tells the truth about their
 * flags, and what they cannot run with is refused with one line (exit 2 for the
 * configuration, 1 for an unreachable store).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load';
import { SETTINGS, defaultText, envName } from '../../src/config/settings';
import { assertOneLine, runSwitchboard } from '../helpers/switchboard-process';

describe('distributed roles on the command line', () => {
  test('switchboard --help lists the registry and proxy roles', async () => {
    const res = await runSwitchboard(['--help']);
    assert.equal(res.code, 0);
    assert.match(res.stdout, /^ {2}registry /m);
    assert.match(res.stdout, /^ {2}proxy /m);
    assert.match(res.stdout, /^ {2}register /m);
  });

  for (const role of ['registry', 'proxy', 'register'] as const) {
    test(`switchboard ${role} --help lists exactly the role's flags, with defaults and variables`, async () => {
      const res = await runSwitchboard([role, '--help']);
      assert.equal(res.code, 0);
      const flagLines = res.stdout.split('\n').filter((l) => /^ {2}--[a-z]/.test(l) && !l.trimStart().startsWith('--config'));
      const expected = SETTINGS.filter((s) => s.roles.includes(role));
      assert.deepEqual(flagLines.map((l) => l.trim().split(' ')[0]).sort(), expected.map((s) => `--${s.flag}`).sort());
      for (const s of expected) {
        const line = flagLines.find((l) => l.trimStart().startsWith(`--${s.flag} `)) as string;
        assert.ok(line.includes(`(default ${defaultText(s.node)})`), line);
        assert.ok(line.includes(envName(s)), line);
      }
    });
  }

  test('the registry role takes the distributed flags', async () => {
    const res = await runSwitchboard(['registry', '--help']);
    for (const flag of ['--store', '--etcd-endpoints', '--etcd-prefix', '--redis', '--redis-channel', '--api-listen', '--admin-listen', '--advertise']) {
      assert.ok(res.stdout.includes(`${flag} `), `registry --help mentions ${flag}`);
    }
  });

  test('the proxy role takes the distributed flags', async () => {
    const res = await runSwitchboard(['proxy', '--help']);
    for (const flag of ['--registry', '--redis', '--redis-channel', '--proxy-listen', '--admin-listen', '--resync-interval']) {
      assert.ok(res.stdout.includes(`${flag} `), `proxy --help mentions ${flag}`);
    }
  });

  test('a proxy without --registry exits 2 with one line', async () => {
    const res = await runSwitchboard(['proxy', '--proxy-listen=127.0.0.1:0', '--admin-listen=127.0.0.1:0']);
    assert.equal(res.code, 2);
    assertOneLine(res.stderr, 'proxy.registry', '--registry');
  });

  test('a proxy with a registry URL that is not http(s) exits 2 with one line', async () => {
    const res = await runSwitchboard(['proxy', '--registry=http://127.0.0.1:1,ftp://x', '--proxy-listen=127.0.0.1:0', '--admin-listen=127.0.0.1:0']);
    assert.equal(res.code, 2);
    assertOneLine(res.stderr, 'proxy.registry', 'ftp://x');
  });

  test('a registry whose etcd cannot be reached exits 1 naming the endpoints', async () => {
    const res = await runSwitchboard(
      ['registry', '--store=etcd', '--etcd-endpoints=127.0.0.1:1', '--api-listen=127.0.0.1:0', '--admin-listen=127.0.0.1:0', '--dns-listen=127.0.0.1:0'],
      { timeoutMs: 20_000 },
    );
    assert.equal(res.code, 1);
    assertOneLine(res.stderr, 'cannot reach etcd at 127.0.0.1:1', '--etcd-endpoints');
  });

  test('a Redis URL of an unknown scheme is refused; Sentinel and Cluster URLs are accepted', async () => {
    const bad = await runSwitchboard(['proxy', '--redis=memcached://x', '--registry=http://127.0.0.1:1']);
    assert.equal(bad.code, 2);
    assertOneLine(bad.stderr, 'bus.redis.url', 'redis+sentinel://');
    for (const url of ['redis+sentinel://127.0.0.1:1/mymaster', 'rediss+cluster://127.0.0.1:1,127.0.0.1:2', 'rediss://h:1/2']) {
      assert.equal(loadConfig({ env: {}, flags: { redis: url } }).bus.redis.url, url);
    }
  });
});
