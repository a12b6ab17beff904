import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WrappedStore } from '../helpers/wrapped-store';
import { type Harness, type Reply, get, ok, put, register, startHarness } from './harness';

/**
 * Every endpoint rejects bad input with 400 `{error: 'bad_request', message, field}` naming
 * the field, and a rejected request writes nothing.
 */
let h: Harness;
let store: WrappedStore;
before(async () => {
  store = new WrappedStore();
  h = await startHarness({ store });
  ok(await register(h.app, { Name: 'web', Check: { TTL: '30s' } }));
});
after(async () => {
  await h.close();
});

async function expectRejected(send: () => Promise<Reply>, field: string): Promise<void> {
  const txns = store.txnCount;
  const rev = h.view.rev;
  const reply = await send();
  assert.equal(reply.status, 400, reply.body);
  const body = reply.json as { error: string; message: string; field: string };
  assert.equal(body.error, 'bad_request');
  assert.equal(body.field, field, body.message);
  assert.equal(typeof body.message, 'string');
  assert.equal(store.txnCount, txns, 'nothing was written');
  assert.equal(h.view.rev, rev);
}

const REGISTER_CASES: [string, unknown, string][] = [
  ['missing Name', { Port: 1 }, 'Name'],
  ['empty Name', { Name: '' }, 'Name'],
  ['Name not a string', { Name: 5 }, 'Name'],
  ['negative Port', { Name: 'w', Port: -1 }, 'Port'],
  ['huge Port', { Name: 'w', Port: 70000 }, 'Port'],
  ['Port as a string', { Name: 'w', Port: '80' }, 'Port'],
  ['fractional Port', { Name: 'w', Port: 1.5 }, 'Port'],
  ['Tags not a list', { Name: 'w', Tags: 'a' }, 'Tags'],
  ['a tag not a string', { Name: 'w', Tags: ['a', 1] }, 'Tags[1]'],
  ['Meta value not a string', { Name: 'w', Meta: { k: 1 } }, 'Meta.k'],
  ['Meta key with spaces', { Name: 'w', Meta: { 'bad key': 'v' } }, 'Meta.bad key'],
  ['Weights.Passing 0', { Name: 'w', Weights: { Passing: 0, Warning: 1 } }, 'Weights.Passing'],
  ['Weights without Passing', { Name: 'w', Weights: { Warning: 1 } }, 'Weights.Passing'],
  ['unparsable TTL', { Name: 'w', Check: { TTL: 'soon' } }, 'Check.TTL'],
  ['TTL of the wrong type', { Name: 'w', Check: { TTL: true } }, 'Check.TTL'],
  ['a check without a type', { Name: 'w', Check: { Notes: 'x' } }, 'Check'],
  ['two check types', { Name: 'w', Check: { TTL: '10s', HTTP: 'http://x/' } }, 'Check.HTTP'],
  ['HTTP without Interval', { Name: 'w', Checks: [{ TTL: '10s' }, { HTTP: 'http://x/' }] }, 'Checks[1].Interval'],
  ['unparsable Interval', { Name: 'w', Checks: [{ TTL: '10s' }, { HTTP: 'http://x/', Interval: '1x' }] }, 'Checks[1].Interval'],
  ['HTTP not http(s)', { Name: 'w', Check: { HTTP: 'ftp://x/', Interval: '1s' } }, 'Check.HTTP'],
  ['HTTP not a URL', { Name: 'w', Check: { HTTP: 'not a url', Interval: '1s' } }, 'Check.HTTP'],
  ['TCP without a port', { Name: 'w', Check: { TCP: 'db.local', Interval: '1s' } }, 'Check.TCP'],
  ['TCP port out of range', { Name: 'w', Check: { TCP: 'db:99999', Interval: '1s' } }, 'Check.TCP'],
  ['unparsable Timeout', { Name: 'w', Check: { TCP: 'db:1', Interval: '1s', Timeout: 'later' } }, 'Check.Timeout'],
  ['unparsable DeregisterCriticalServiceAfter', { Name: 'w', Check: { TTL: '10s', DeregisterCriticalServiceAfter: 'x' } }, 'Check.DeregisterCriticalServiceAfter'],
  ['unknown Status', { Name: 'w', Check: { TTL: '10s', Status: 'ok' } }, 'Check.Status'],
  ['unsupported check type', { Name: 'w', Check: { GRPC: 'x:1', Interval: '1s' } }, 'Check.GRPC'],
  ['duplicate CheckID', { Name: 'w', Checks: [{ TTL: '1s', CheckID: 'a' }, { TTL: '1s', CheckID: 'a' }] }, 'Checks[1].CheckID'],
  ['Checks not a list', { Name: 'w', Checks: { TTL: '1s' } }, 'Checks'],
  ['Port 0', { Name: 'w', Port: 0 }, 'Port'],
  ['a Name that is no DNS label', { Name: 'web_api' }, 'Name'],
  ['a Name starting with "-"', { Name: '-web' }, 'Name'],
  ['a Name longer than 63', { Name: 'a'.repeat(64) }, 'Name'],
  ['an ID with "/"', { Name: 'w', ID: 'a/b' }, 'ID'],
  ['an ID longer than 128', { Name: 'w', ID: 'x'.repeat(129) }, 'ID'],
  ['an ID with a control character', { Name: 'w', ID: 'a\u0001b' }, 'ID'],
  ['an Address that is neither IP nor host name', { Name: 'w', Address: 'not an address', Port: 1 }, 'Address'],
  ['65 tags', { Name: 'w', Tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }, 'Tags'],
  ['a tag of 256 characters', { Name: 'w', Tags: ['x'.repeat(256)] }, 'Tags[0]'],
  ['65 Meta keys', { Name: 'w', Meta: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }, 'Meta'],
  ['a Meta value of 513 characters', { Name: 'w', Meta: { k: 'x'.repeat(513) } }, 'Meta.k'],
  ['a reserved consul- Meta key', { Name: 'w', Meta: { 'consul-network': 'x' } }, 'Meta.consul-network'],
  ['a __proto__ key', '{"Name":"w","Meta":{"__proto__":{"polluted":"yes"}}}', '__proto__'],
  ['a constructor key', '{"Name":"w","Meta":{"constructor":"x"}}', 'constructor'],
  ['a CR LF in a tag', { Name: 'w', Tags: ['a\r\nb'] }, '0'],
  ['a NUL in the Name', { Name: 'w\u0000' }, 'Name'],
  ['a urlprefix- tag claiming every path', { Name: 'w', Tags: ['urlprefix-/'] }, 'Tags[0]'],
  ["a urlprefix- tag claiming another service's Host", { Name: 'w', Tags: ['urlprefix-payments.svc/'] }, 'Tags[0]'],
  ['nine checks', { Name: 'w', Checks: Array.from({ length: 9 }, () => ({ TTL: '10s' })) }, 'Checks'],
  ['an Interval under 1s', { Name: 'w', Check: { TCP: 'db:1', Interval: '500ms' } }, 'Check.Interval'],
  ['an Interval over 24h', { Name: 'w', Check: { TCP: 'db:1', Interval: '25h' } }, 'Check.Interval'],
  ['a Timeout longer than the Interval', { Name: 'w', Check: { TCP: 'db:1', Interval: '2s', Timeout: '3s' } }, 'Check.Timeout'],
  ['an HTTP check URL with credentials', { Name: 'w', Check: { HTTP: 'http://u:p@db:80/', Interval: '2s' } }, 'Check.HTTP'],
  ['an instance at the link-local metadata address', { Name: 'w', Address: '169.254.169.254', Port: 80 }, 'Address'],
  ['an IPv6 link-local instance', { Name: 'w', Address: 'fe80::1', Port: 80 }, 'Address'],
  ['an instance at the registry API itself', { Name: 'w', Address: '127.0.0.1', Port: 8500 }, 'Address'],
  ['an instance at the API by name', { Name: 'w', Address: 'localhost', Port: 8500 }, 'Address'],
  ['an instance at the API through 0.0.0.0', { Name: 'w', Address: '0.0.0.0', Port: 8500 }, 'Address'],
  ['an HTTP check of the metadata service', { Name: 'w', Check: { HTTP: 'http://169.254.169.254/latest/meta-data/', Interval: '5s' } }, 'Check.HTTP'],
  ['a TCP check of the API', { Name: 'w', Check: { TCP: '[::1]:8500', Interval: '5s' } }, 'Check.TCP'],
  ['a JSON array body', [], 'body'],
  ['a JSON null body', 'null', 'body'],
  ['invalid JSON', '{"Name": ', 'body'],
];

describe('PUT /v1/agent/service/register rejects', () => {
  it('invalid UTF-8 (body)', () => expectRejected(() => put(h.app, '/v1/agent/service/register', Buffer.from([0x7b, 0x22, 0x4e, 0x61, 0x6d, 0x65, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])), 'body'));

  for (const [what, body, field] of REGISTER_CASES) {
    it(`${what} (${field})`, () => expectRejected(() => register(h.app, body), field));
  }

  it('an empty body (body)', () => expectRejected(() => put(h.app, '/v1/agent/service/register'), 'body'));

  it('a bad ?replace-existing-checks (replace-existing-checks)', () =>
    expectRejected(() => register(h.app, { Name: 'w' }, '?replace-existing-checks=maybe'), 'replace-existing-checks'));
});

describe('check updates reject', () => {
  it('a repeated ?note (note)', () => expectRejected(() => put(h.app, '/v1/agent/check/pass/service:web?note=a&note=b'), 'note'));
  it('an unknown Status (Status)', () =>
    expectRejected(() => put(h.app, '/v1/agent/check/update/service:web', { Status: 'fine' }), 'Status'));
  it('a missing Status (Status)', () => expectRejected(() => put(h.app, '/v1/agent/check/update/service:web', { Output: 'x' }), 'Status'));
  it('Output of the wrong type (Output)', () =>
    expectRejected(() => put(h.app, '/v1/agent/check/update/service:web', { Status: 'passing', Output: 5 }), 'Output'));
  it('invalid JSON (body)', () => expectRejected(() => put(h.app, '/v1/agent/check/update/service:web', '{'), 'body'));
});

describe('reads reject bad blocking-query parameters', () => {
  const endpoints = [
    '/v1/agent/services',
    '/v1/agent/service/web',
    '/v1/catalog/services',
    '/v1/catalog/service/web',
    '/v1/health/service/web',
  ];
  const bad: [string, string][] = [
    ['index=abc', 'index'],
    ['index=-1', 'index'],
    ['index=1&index=2', 'index'],
    ['index=1&wait=5', 'wait'],
    ['index=1&wait=soon', 'wait'],
  ];
  for (const endpoint of endpoints) {
    for (const [query, field] of bad) {
      it(`${endpoint}?${query} (${field})`, () => expectRejected(() => get(h.app, `${endpoint}?${query}`), field));
    }
  }

  it('?passing=maybe (passing)', () => expectRejected(() => get(h.app, '/v1/health/service/web?passing=maybe'), 'passing'));
  it('/v1/switchboard/changes?since=x (since)', () => expectRejected(() => get(h.app, '/v1/switchboard/changes?since=x'), 'since'));
  it('/v1/switchboard/changes?min=-2 (min)', () => expectRejected(() => get(h.app, '/v1/switchboard/changes?since=0&min=-2'), 'min'));
});
