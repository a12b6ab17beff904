import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, loadConfig, SETTINGS, envName, settingDefault } from '../../src/config/load';
import { parseListen } from '../../src/config/schema';

const dir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function configFile(text: string, ext = 'yaml'): string {
  const file = path.join(dir, `config-${fileCount++}.${ext}`);
  writeFileSync(file, text);
  return file;
}

function load(options: { file?: string; env?: Record<string, string>; flags?: Record<string, string> } = {}) {
  return loadConfig({ file: options.file, env: options.env ?? {}, flags: options.flags ?? {} });
}

/** Asserts a ConfigError whose message names the source, the field path and the reason. */
function assertInvalid(fn: () => unknown, expected: { source: string; field: string; reason: RegExp }): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'config_invalid');
    assert.equal(err.source, expected.source);
    assert.equal(err.field, expected.field);
    assert.ok(err.message.startsWith(`${expected.source}: ${expected.field}: `), err.message);
    assert.match(err.message, expected.reason);
    return true;
  });
}

describe('config defaults', () => {
  test('no file, no environment, no flags gives the documented defaults', () => {
    const config = load();
    assert.equal(config.proxy.listen, '127.0.0.1:8080');
    assert.equal(config.api.listen, '127.0.0.1:8500');
    assert.equal(config.admin.listen, '127.0.0.1:9901');
    assert.equal(config.dataDir, './data');
    assert.equal(config.domain, 'svc');
    assert.equal(config.logLevel, 'info');
    assert.equal(config.api.maxWait, 600_000);
    assert.deepEqual(config.proxy.timeouts, { connect: 5_000, response: 60_000, idle: 60_000 });
    assert.equal(config.proxy.drain, 10_000);
    assert.equal(config.proxy.resyncInterval, 30_000);
    assert.equal(config.proxy.pathRouting, true);
    assert.equal(config.proxy.stripServicePrefix, true);
    assert.deepEqual(config.proxy.routes, []);
    assert.equal(config.proxy.registry, undefined);
    assert.deepEqual(config.store, { kind: 'embedded', compactEvery: 10_000, etcd: { endpoints: ['127.0.0.1:2379'], prefix: 'switchboard/' } });
    assert.deepEqual(config.bus, { kind: 'local', redis: { url: 'redis://127.0.0.1:6379', channel: 'switchboard:catalog', key: '' } });
  });

  test('the resolved configuration is deeply frozen', () => {
    const config = load({ file: configFile('proxy:\n  routes:\n    - { prefix: /api, service: api }\n') });
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.proxy.timeouts));
    assert.ok(Object.isFrozen(config.proxy.routes[0]));
    assert.throws(() => {
      (config.proxy as { listen: string }).listen = 'x';
    }, TypeError);
  });

  test('every setting has a default in the schema, or says what its absence means', () => {
    for (const s of SETTINGS) {
      if (['proxy.registry', 'register.service', 'register.port'].includes(s.path)) continue;
      assert.ok(settingDefault(s.path) !== undefined || s.node.defaultText !== undefined, s.path);
    }
  });
});

describe('config file', () => {
  test('YAML durations as strings and as milliseconds, routes with strip defaulting to false', () => {
    const file = configFile(
      [
        'domain: Internal.Example',
        'api: { maxWait: 1m30s }',
        'proxy:',
        '  timeouts: { connect: 250ms, response: 2000 }',
        '  drain: 0',
        '  routes:',
        '    - { host: api.example.com, service: api }',
        '    - { prefix: /v2/users, service: users, strip: true }',
      ].join('\n'),
    );
    const config = load({ file });
    assert.equal(config.domain, 'internal.example');
    assert.equal(config.api.maxWait, 90_000);
    assert.equal(config.proxy.timeouts.connect, 250);
    assert.equal(config.proxy.timeouts.response, 2_000);
    assert.equal(config.proxy.timeouts.idle, 60_000);
    assert.equal(config.proxy.drain, 0);
    assert.deepEqual(config.proxy.routes, [
      { host: 'api.example.com', service: 'api', strip: false },
      { prefix: '/v2/users', service: 'users', strip: true },
    ]);
  });

  test('JSON files are read as JSON', () => {
    const config = load({ file: configFile('{"proxy": {"listen": "127.0.0.1:0"}}', 'json') });
    assert.equal(config.proxy.listen, '127.0.0.1:0');
  });

  test('an empty file means all defaults', () => {
    assert.equal(load({ file: configFile('') }).proxy.listen, '127.0.0.1:8080');
  });

  test('the example config in config/ is valid', () => {
    const example = path.resolve(__dirname, '../../../config/switchboard.example.yaml');
    assert.equal(load({ file: example }).proxy.listen, '127.0.0.1:8080');
  });
});

describe('precedence: file < environment < flags', () => {
  const file = () => configFile('proxy:\n  listen: 127.0.0.1:1001\napi:\n  listen: 127.0.0.1:2001\nadmin:\n  listen: 127.0.0.1:3001\n');

  test('environment overrides the file, flags override both', () => {
    const config = load({
      file: file(),
      env: { SWITCHBOARD_PROXY_LISTEN: '127.0.0.1:1002', SWITCHBOARD_API_LISTEN: '127.0.0.1:2002' },
      flags: { 'proxy-listen': '127.0.0.1:1003' },
    });
    assert.equal(config.proxy.listen, '127.0.0.1:1003');
    assert.equal(config.api.listen, '127.0.0.1:2002');
    assert.equal(config.admin.listen, '127.0.0.1:3001');
  });

  test('environment and flag strings are coerced to durations, integers, booleans and lists', () => {
    const config = load({
      env: { SWITCHBOARD_DRAIN: '1500', SWITCHBOARD_PATH_ROUTING: 'false', SWITCHBOARD_ETCD_ENDPOINTS: 'a:1, b:2' },
      flags: { 'connect-timeout': '2s', 'compact-every': '50', 'strip-service-prefix': 'false', 'log-level': 'debug', 'data-dir': '/tmp/x' },
    });
    assert.equal(config.proxy.drain, 1500);
    assert.equal(config.proxy.pathRouting, false);
    assert.deepEqual(config.store.etcd.endpoints, ['a:1', 'b:2']);
    assert.equal(config.proxy.timeouts.connect, 2000);
    assert.equal(config.store.compactEvery, 50);
    assert.equal(config.proxy.stripServicePrefix, false);
    assert.equal(config.logLevel, 'debug');
    assert.equal(config.dataDir, '/tmp/x');
  });

  test('environment variable names follow the flag names', () => {
    assert.equal(envName({ flag: 'proxy-listen' }), 'SWITCHBOARD_PROXY_LISTEN');
    assert.equal(envName({ flag: 'log-level' }), 'SWITCHBOARD_LOG_LEVEL');
    assert.equal(envName({ flag: 'data-dir' }), 'SWITCHBOARD_DATA_DIR');
    assert.equal(load({ env: { SWITCHBOARD_DOMAIN: 'mesh' } }).domain, 'mesh');
  });

  test('variables outside the SWITCHBOARD_ namespace are ignored', () => {
    assert.equal(load({ env: { PATH: '/bin', PROXY_LISTEN: 'nonsense' } }).proxy.listen, '127.0.0.1:8080');
  });
});

describe('invalid values name their source, field path and reason', () => {
  const cases: Array<{ name: string; yaml: string; field: string; reason: RegExp }> = [
    { name: 'a bad duration', yaml: 'proxy:\n  timeouts:\n    connect: 5 seconds\n', field: 'proxy.timeouts.connect', reason: /duration.*got "5 seconds"/ },
    { name: 'a zero timeout', yaml: 'proxy:\n  timeouts:\n    response: 0s\n', field: 'proxy.timeouts.response', reason: /positive duration/ },
    { name: 'a port out of range', yaml: 'proxy:\n  listen: 127.0.0.1:65536\n', field: 'proxy.listen', reason: /host:port.*0 to 65535/ },
    { name: 'a listen address without a port', yaml: 'admin:\n  listen: localhost\n', field: 'admin.listen', reason: /host:port/ },
    { name: 'an unknown log level', yaml: 'logLevel: loud\n', field: 'logLevel', reason: /one of fatal, error/ },
    { name: 'a wrong type', yaml: 'proxy:\n  pathRouting: yes\n', field: 'proxy.pathRouting', reason: /must be boolean/ },
    { name: 'a fractional integer', yaml: 'store:\n  compactEvery: 1.5\n', field: 'store.compactEvery', reason: /integer/ },
    { name: 'a route with both host and prefix', yaml: 'proxy:\n  routes:\n    - { host: a, prefix: /a, service: a }\n', field: 'proxy.routes[0]', reason: /exactly one of "host" or "prefix"/ },
    { name: 'a route with neither host nor prefix', yaml: 'proxy:\n  routes:\n    - { service: a }\n', field: 'proxy.routes[0]', reason: /exactly one of/ },
    { name: 'a prefix without a slash', yaml: 'proxy:\n  routes:\n    - { prefix: api, service: a }\n', field: 'proxy.routes[0].prefix', reason: /start with "\/"/ },
    { name: 'a route without a service', yaml: 'proxy:\n  routes:\n    - { prefix: /a }\n', field: 'proxy.routes[0].service', reason: /required/ },
    { name: 'an unknown store kind', yaml: 'store:\n  kind: zookeeper\n', field: 'store.kind', reason: /one of embedded, etcd/ },
    { name: 'a redis URL of the wrong scheme', yaml: 'bus:\n  redis:\n    url: http://x\n', field: 'bus.redis.url', reason: /redis:\/\// },
    { name: 'a bad domain', yaml: 'domain: "a..b"\n', field: 'domain', reason: /DNS name/ },
    { name: 'a section that is not a mapping', yaml: 'proxy: 3\n', field: 'proxy', reason: /must be object/ },
  ];
  for (const c of cases) {
    test(`file: ${c.name}`, () => {
      const file = configFile(c.yaml);
      assertInvalid(() => load({ file }), { source: `config file ${file}`, field: c.field, reason: c.reason });
    });
  }

  test('file: an unknown field is rejected (typo protection), at any depth', () => {
    const top = configFile('proxyy:\n  listen: 127.0.0.1:1\n');
    assertInvalid(() => load({ file: top }), { source: `config file ${top}`, field: 'proxyy', reason: /unknown field/ });
    const nested = configFile('proxy:\n  timeouts:\n    conect: 1s\n');
    assertInvalid(() => load({ file: nested }), { source: `config file ${nested}`, field: 'proxy.timeouts.conect', reason: /unknown field/ });
  });

  test('file: YAML syntax errors and a missing file', () => {
    const broken = configFile('proxy:\n  listen: [1, 2\n');
    assertInvalid(() => load({ file: broken }), { source: `config file ${broken}`, field: '(file)', reason: /not valid YAML/ });
    const json = configFile('{"proxy": }', 'json');
    assertInvalid(() => load({ file: json }), { source: `config file ${json}`, field: '(file)', reason: /not valid JSON/ });
    const missing = path.join(dir, 'nope.yaml');
    assertInvalid(() => load({ file: missing }), { source: `config file ${missing}`, field: '(file)', reason: /ENOENT/ });
    const list = configFile('- a\n- b\n');
    assertInvalid(() => load({ file: list }), { source: `config file ${list}`, field: '(root)', reason: /mapping/ });
  });

  test('environment: a bad value names the variable', () => {
    assertInvalid(() => load({ env: { SWITCHBOARD_PROXY_LISTEN: 'nowhere' } }), {
      source: 'environment SWITCHBOARD_PROXY_LISTEN',
      field: 'proxy.listen',
      reason: /host:port/,
    });
    assertInvalid(() => load({ env: { SWITCHBOARD_COMPACT_EVERY: 'lots' } }), {
      source: 'environment SWITCHBOARD_COMPACT_EVERY',
      field: 'store.compactEvery',
      reason: /integer/,
    });
    assertInvalid(() => load({ env: { SWITCHBOARD_PATH_ROUTING: 'maybe' } }), {
      source: 'environment SWITCHBOARD_PATH_ROUTING',
      field: 'proxy.pathRouting',
      reason: /boolean/,
    });
  });

  test('environment: an unknown SWITCHBOARD_ variable is rejected (typo protection)', () => {
    assertInvalid(() => load({ env: { SWITCHBOARD_PROXY_LISTN: '127.0.0.1:1' } }), {
      source: 'environment SWITCHBOARD_PROXY_LISTN',
      field: '(environment)',
      reason: /unknown setting/,
    });
  });

  test('flags: a bad value names the flag', () => {
    assertInvalid(() => load({ flags: { drain: 'soon' } }), { source: 'flag --drain', field: 'proxy.drain', reason: /duration/ });
    assertInvalid(() => load({ flags: { 'log-level': 'chatty' } }), { source: 'flag --log-level', field: 'logLevel', reason: /one of/ });
    assertInvalid(() => load({ flags: { bogus: 'x' } }), { source: 'flag --bogus', field: '(flag)', reason: /unknown flag/ });
  });

  test('a valid flag does not hide an invalid file', () => {
    const file = configFile('proxy:\n  listen: nowhere\n');
    assertInvalid(() => load({ file, flags: { 'proxy-listen': '127.0.0.1:1' } }), {
      source: `config file ${file}`,
      field: 'proxy.listen',
      reason: /host:port/,
    });
  });
});

describe('listen addresses', () => {
  const cases: Array<[string, { host: string; port: number } | undefined]> = [
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['localhost:65535', { host: 'localhost', port: 65535 }],
    ['[::1]:8080', { host: '::1', port: 8080 }],
    ['0.0.0.0:80', { host: '0.0.0.0', port: 80 }],
    ['127.0.0.1:65536', undefined],
    [':8080', undefined],
    ['127.0.0.1', undefined],
    ['127.0.0.1:-1', undefined],
    ['::1:80', undefined],
    ['host :80', undefined],
  ];
  for (const [text, expected] of cases) {
    test(`${JSON.stringify(text)} → ${JSON.stringify(expected)}`, () => assert.deepEqual(parseListen(text), expected));
  }
});

describe('registry.electionTtl', () => {
  test('defaults to 3 s and takes --election-ttl, the environment and the file', () => {
    assert.equal(load().registry.electionTtl, 3000);
    assert.equal(load({ flags: { 'election-ttl': '5s' } }).registry.electionTtl, 5000);
    assert.equal(load({ env: { SWITCHBOARD_ELECTION_TTL: '2000' } }).registry.electionTtl, 2000);
    assert.equal(load({ file: configFile('registry: { electionTtl: 1m }') }).registry.electionTtl, 60_000);
  });

  test('--election-ttl is a registry-role flag (so --help lists it there)', () => {
    const setting = SETTINGS.find((s) => s.flag === 'election-ttl');
    assert.deepEqual(setting?.roles, ['registry']);
    assert.equal(settingDefault('registry.electionTtl'), '3s');
  });

  for (const bad of ['500ms', '0', '1.5s', '1500', 'soon']) {
    test(`rejects ${JSON.stringify(bad)}: etcd leases are whole seconds, at least 1 s`, () => {
      assertInvalid(() => load({ flags: { 'election-ttl': bad } }), {
        source: 'flag --election-ttl',
        field: 'registry.electionTtl',
        reason: /whole number of seconds, at least 1s/,
      });
    });
  }
});

describe('bus key', () => {
  test('empty by default, taken from the environment, and refused when shorter than 16 characters', () => {
    assert.equal(load().bus.redis.key, '');
    assert.equal(load({ env: { SWITCHBOARD_REDIS_KEY: 'k'.repeat(32) } }).bus.redis.key, 'k'.repeat(32));
    assertInvalid(() => load({ env: { SWITCHBOARD_REDIS_KEY: 'short' } }), {
      source: 'environment SWITCHBOARD_REDIS_KEY',
      field: 'bus.redis.key',
      reason: /must be empty or at least 16 characters/,
    });
  });
});
