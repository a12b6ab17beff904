/**
 * The CLI's contract with a user: help lists every flag with its default, invalid input exits
 * 2 with one line naming where the bad value came from, the field and the reason, and a busy
 * port exits 1 with one clear line.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { makeTempDir } from '../helpers/child';
import { assertOneLine, runSwitchboard } from '../helpers/switchboard-process';
import { SETTINGS, defaultText, envName } from '../../src/config/settings';

const dir = makeTempDir('cli');
after(() => rmSync(dir, { recursive: true, force: true }));

/** Flags that bind nothing real, so a start that gets past validation cannot collide. */
const SAFE = ['--proxy-listen=127.0.0.1:0', '--api-listen=127.0.0.1:0', '--admin-listen=127.0.0.1:0', '--dns-listen=127.0.0.1:0'];

describe('help', () => {
  test('switchboard --help lists the roles and every flag with its default', async () => {
    const res = await runSwitchboard(['--help']);
    assert.equal(res.code, 0);
    assert.match(res.stdout, /^Usage: switchboard <role>/);
    assert.match(res.stdout, /^ {2}all /m);
    for (const flag of ['--proxy-listen', '--api-listen', '--admin-listen', '--data-dir', '--domain', '--config', '--log-level']) {
      assert.ok(res.stdout.includes(flag), `--help mentions ${flag}`);
    }
  });

  test('switchboard all --help lists every flag of the role with its default and its variable', async () => {
    const res = await runSwitchboard(['all', '--help']);
    assert.equal(res.code, 0);
    const lines = res.stdout.split('\n');
    for (const s of SETTINGS.filter((x) => x.roles.includes('all'))) {
      const line = lines.find((l) => l.trimStart().startsWith(`--${s.flag} `));
      assert.ok(line, `all --help lists --${s.flag}`);
      assert.ok(line.includes(`(default ${defaultText(s.node)})`), line);
      assert.ok(line.includes(envName(s)), line);
    }
    assert.match(res.stdout, /--proxy-listen HOST:PORT .*\(default 127\.0\.0\.1:8080\)/);
    assert.match(res.stdout, /--api-listen HOST:PORT .*\(default 127\.0\.0\.1:8500\)/);
    assert.match(res.stdout, /--admin-listen HOST:PORT .*\(default 127\.0\.0\.1:9901\)/);
    assert.match(res.stdout, /--data-dir DIR .*\(default \.\/data\)/);
    assert.match(res.stdout, /--config FILE/);
  });

  test('no role prints usage and exits 2; an unknown role exits 2', async () => {
    const none = await runSwitchboard([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /Usage: switchboard <role>/);
    const unknown = await runSwitchboard(['router']);
    assert.equal(unknown.code, 2);
    assertOneLine(unknown.stderr, 'unknown role "router"');
  });
});

describe('invalid input exits 2 naming source, field and reason', () => {
  test('node started with --insecure-http-parser (NODE_OPTIONS) is refused in one line', async () => {
    const res = await runSwitchboard(['all', ...SAFE, `--data-dir=${dir}/insecure`], { env: { NODE_OPTIONS: '--insecure-http-parser' } });
    assert.equal(res.code, 2);
    assertOneLine(res.stderr, '--insecure-http-parser', 'NODE_OPTIONS');
    assert.ok(!existsSync(`${dir}/insecure`), 'nothing was started');
  });

  test('a trusted proxy that is not a CIDR', async () => {
    const res = await runSwitchboard(['all', ...SAFE, '--trusted-proxies=10.0.0.0/8,10.0.0.0/99']);
    assert.equal(res.code, 2);
    assertOneLine(res.stderr, 'proxy.trustedProxies[1]', 'CIDR', '10.0.0.0/99');
  });

  test('a bad value in the config file', async () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'proxy:\n  timeouts:\n    connect: soon\n');
    const res = await runSwitchboard(['all', '--config', file, ...SAFE, `--data-dir=${dir}/d1`]);
    assert.equal(res.code, 2);
    assertOneLine(res.stderr, file, 'proxy.timeouts.connect', 'duration', '"soon"');
    assert.ok(!existsSync(`${dir}/d1`), 'nothing was started');
  });

  test('an unknown field in the config file', async () => {
    const file = path.join(dir, 'typo.yaml');
    writeFileSync(file, 'admin:\n  listn: 127.0.0.1:0\n');
    const res = await runSwitchboard(['all', '--config', file, ...SAFE]);
    assert.equal(res.code, 2);
    assertOneLine(res.stderr, file, 'admin.listn', 'unknown field');
  });

  test('a missing config file', async () => {
    const res = await runSwitchboard(['all', '--config', path.join(dir, 'nope.yaml'), ...SAFE]);
    assert.equal(res.code, 2);
    assertOneLine(res.stderr, 'nope.yaml', 'ENOENT');
  });

  test('a bad flag value', async () => {
    const res = await runSwitchboard(['all', '--proxy-listen', 'localhost:99999']);
    assert.equal(res.code, 2);
    assertOneLine(res.stderr, 'flag --proxy-listen', 'proxy.listen', 'port from 0 to 65535');
  });

  test('an unknown flag and a flag without its value', async () => {
    const unknown = await runSwitchboard(['all', '--proxy-lisen', '127.0.0.1:0']);
    assert.equal(unknown.code, 2);
    assertOneLine(unknown.stderr, '--proxy-lisen', 'unknown flag');
    const missing = await runSwitchboard(['all', '--data-dir']);
    assert.equal(missing.code, 2);
    assertOneLine(missing.stderr, '--data-dir', 'needs a value');
  });

  test('a bad environment variable', async () => {
    const res = await runSwitchboard(['all', ...SAFE], { env: { SWITCHBOARD_LOG_LEVEL: 'loud' } });
    assert.equal(res.code, 2);
    assertOneLine(res.stderr, 'environment SWITCHBOARD_LOG_LEVEL', 'logLevel', 'one of');
  });

  test('a store other than embedded is refused by the all role', async () => {
    const res = await runSwitchboard(['all', ...SAFE, `--data-dir=${dir}/d2`], { env: { SWITCHBOARD_STORE: 'etcd' } });
    assert.equal(res.code, 2);
    assertOneLine(res.stderr, 'store.kind', 'embedded');
    assert.ok(!existsSync(path.join(dir, 'd2', 'LOCK')), 'no lock is left behind');
  });
});

describe('busy port', () => {
  test('exits 1 with one line naming the address and the flag, and releases the data dir', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const dataDir = path.join(dir, 'busy');
      const res = await runSwitchboard(['all', ...SAFE, `--proxy-listen=127.0.0.1:${port}`, `--data-dir=${dataDir}`]);
      assert.equal(res.code, 1);
      assert.equal(res.stderr.trim(), `switchboard: cannot listen on 127.0.0.1:${port} (--proxy-listen): address already in use`);
      assert.ok(!existsSync(path.join(dataDir, 'LOCK')), 'the data dir lock was released');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
