/**
 * Bus messages on a shared Redis: what a proxy believes of one. Names and revisions from
 * anyone; instance changes only with a valid signature; nothing malformed gets through.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CatalogMessage } from '../../src/bus/bus';
import { decodeMessage, encodeMessage } from '../../src/bus/message-codec';
import { DEFAULT_WEIGHTS, type Instance } from '../../src/catalog/model';

const KEY = 'a-shared-secret-of-32-characters';

function record(id: string, service: string, address = '127.0.0.1'): Instance {
  return { id, service, address, port: 8080, tags: ['t'], meta: { k: 'v' }, weights: { ...DEFAULT_WEIGHTS }, checks: [{ checkId: `${id}:ttl`, name: 'ttl', type: 'ttl', status: 'passing', output: '', statusSince: 1 }], createIndex: 3, modifyIndex: 4 };
}

const withChanges: CatalogMessage = { rev: 4, prevRev: 3, services: ['web'], changes: [{ id: 'web-1', to: record('web-1', 'web') }] };

describe('bus message codec', () => {
  it('a signed message round-trips with its changes, frozen', () => {
    const decoded = decodeMessage(encodeMessage(withChanges, KEY), KEY);
    assert.equal(decoded.verdict, 'signed');
    assert.deepEqual(decoded.message, withChanges);
    assert.ok(Object.isFrozen(decoded.message?.changes?.[0].to));
  });

  it('a tampered body, a wrong key or a malformed signature drops the message', () => {
    const envelope = JSON.parse(encodeMessage(withChanges, KEY)) as { body: string; sig: string };
    const tampered = JSON.stringify({ ...envelope, body: envelope.body.replace('127.0.0.1', '127.0.0.2') });
    assert.equal(decodeMessage(tampered, KEY).verdict, 'bad_signature');
    assert.equal(decodeMessage(encodeMessage(withChanges, 'another-key-of-enough-length'), KEY).verdict, 'bad_signature');
    for (const sig of ['', 'zz', envelope.sig.toUpperCase(), `${envelope.sig}00`]) {
      assert.equal(decodeMessage(JSON.stringify({ ...envelope, sig }), KEY).verdict, 'bad_signature', sig);
    }
  });

  it('changes in an unsigned message — or a signed one read without the key — are not believed: names only', () => {
    const plain = decodeMessage(JSON.stringify(withChanges), KEY);
    assert.equal(plain.changesIgnored, 'unverified');
    assert.deepEqual(plain.message, { rev: 4, prevRev: 3, services: ['web'] });
    const keyless = decodeMessage(encodeMessage(withChanges, KEY), '');
    assert.equal(keyless.changesIgnored, 'unverified');
    assert.deepEqual(keyless.message, { rev: 4, prevRev: 3, services: ['web'] });
    assert.deepEqual(decodeMessage(encodeMessage({ rev: 2, prevRev: 1, services: ['a'] }, ''), '').message, { rev: 2, prevRev: 1, services: ['a'] });
  });

  it('signed but malformed changes are not believed; the names still count', () => {
    const bad: unknown[] = [
      [{ id: 'web-1', to: { ...record('web-1', 'web'), port: 70_000 } }],
      [{ id: 'web-1', to: { ...record('web-1', 'web'), checks: [{ checkId: 'c', status: 'fine' }] } }],
      [{ id: 'web-1', to: { ...record('web-1', 'web'), weights: { passing: -1, warning: 1 } } }],
      [{ id: 'web-1', to: { ...record('web-1', 'web'), tags: [1] } }],
      [{ id: 'web-1', to: { ...record('web-1', 'web'), meta: { k: {} } } }],
      [{ id: 'web-2', to: record('web-1', 'web') }],
      [{ id: 'web-1', to: record('web-1', 'admin') }],
      [{ id: 'web-1', from: 'admin' }],
      [{ id: '', from: 'web' }],
      [null],
      'nope',
      Array.from({ length: 10_001 }, (_, i) => ({ id: `x${i}`, from: 'web' })),
    ];
    for (const changes of bad) {
      const body = JSON.stringify({ rev: 4, prevRev: 3, services: ['web'], changes });
      const decoded = decodeMessage(encodeMessage(JSON.parse(body) as CatalogMessage, KEY), KEY);
      assert.equal(decoded.verdict, 'signed');
      assert.equal(decoded.changesIgnored, 'malformed', JSON.stringify(changes).slice(0, 80));
      assert.deepEqual(decoded.message, { rev: 4, prevRev: 3, services: ['web'] });
    }
  });

  it('anything else is malformed, never thrown', () => {
    const raws = ['', 'null', '[]', '{', '{"rev":-1,"prevRev":0,"services":[]}', '{"rev":1,"prevRev":2,"services":[]}', '{"rev":1,"prevRev":0,"services":[1]}', '{"v":1,"body":"{","sig":"00"}', '\u0000'.repeat(10)];
    for (const raw of raws) {
      const decoded = decodeMessage(raw, '');
      assert.ok(decoded.message === undefined && decoded.verdict === 'malformed', raw);
    }
    const envelope = JSON.stringify({ v: 1, body: '{', sig: '0'.repeat(64) });
    assert.equal(decodeMessage(envelope, KEY).verdict, 'bad_signature');
  });
});
