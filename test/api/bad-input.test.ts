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
  ['a JSON array body', [], 'body'],
  ['a JSON null body', 'null', 'body'],
  ['invalid JSON', '{"Name": ', 'body'],
];

describe('PUT /v1/agent/service/register rejects', () => {
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
