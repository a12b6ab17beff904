/**
 * Instances hold what they have alike once per process: empty tags, meta and checks, default
 * weights, and the same strings (service, address, tags, meta values) as one copy — bounded,
 * because registrations choose those strings.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sharedInstance } from '../../src/catalog/instance-shape';
import { DEFAULT_WEIGHTS, type Instance } from '../../src/catalog/model';
import { sharedString, sharedStringCount } from '../../src/catalog/shared-parts';
import { decodeInstance, encodeInstance } from '../../src/registry/instance-codec';

function parsed(fields: Partial<Instance> = {}): Instance {
  // Through JSON, as every record arrives: fresh strings, arrays and objects each time.
  const base = { id: 'web-1', service: 'payments-frontend', address: '10.20.30.40', port: 8080, tags: [], meta: {}, weights: { passing: 1, warning: 1 }, checks: [], createIndex: 1, modifyIndex: 1 };
  return JSON.parse(JSON.stringify({ ...base, ...fields })) as Instance;
}

describe('shared instance parts', () => {
  it('two records with empty parts and default weights share them', () => {
    const a = sharedInstance(parsed({ id: 'a' }));
    const b = sharedInstance(parsed({ id: 'b' }));
    assert.equal(a.tags, b.tags);
    assert.equal(a.meta, b.meta);
    assert.equal(a.checks, b.checks);
    assert.equal(a.weights, DEFAULT_WEIGHTS);
    assert.ok(Object.isFrozen(a.tags) && Object.isFrozen(a.meta) && Object.isFrozen(a.checks));
  });

  it('records keep parts of their own when they differ, with the strings inside shared', () => {
    const a = sharedInstance(parsed({ id: 'a', tags: ['canary-eu-west-1a'], meta: { version: 'v2.31.4-release' }, weights: { passing: 10, warning: 1 } }));
    const b = sharedInstance(parsed({ id: 'b', tags: ['canary-eu-west-1a'], meta: { version: 'v2.31.4-release' } }));
    assert.deepEqual(a.tags, ['canary-eu-west-1a']);
    assert.deepEqual(a.meta, { version: 'v2.31.4-release' });
    assert.deepEqual(a.weights, { passing: 10, warning: 1 });
    assert.equal(b.weights, DEFAULT_WEIGHTS);
    assert.notEqual(a.tags, b.tags);
    // Same content: the records read the same, whatever is shared underneath.
    assert.equal(a.tags[0], b.tags[0]);
    assert.equal(a.meta.version, b.meta.version);
    assert.equal(a.service, 'payments-frontend');
    assert.equal(a.address, '10.20.30.40');
  });

  it('decoding from the store gives the same record as before, only shared', () => {
    const instance = parsed({ tags: ['a'], meta: { zone: 'z' }, checks: [{ checkId: 'service:web-1', name: 'ttl', status: 'passing', output: '', type: 'ttl' }] as Instance['checks'] });
    const stored = encodeInstance(instance);
    const decoded = decodeInstance({ key: 'instances/web-1', value: stored, createRev: 3, modRev: 4 });
    assert.ok(decoded);
    assert.deepEqual({ ...decoded }, { ...instance, createIndex: 3, modifyIndex: 4 });
    assert.ok(Object.isFrozen(decoded) && Object.isFrozen(decoded.checks[0]));
  });

  it('a stored record whose tags or meta hold something other than strings decodes as it is, without throwing', () => {
    const value = JSON.stringify({ id: 'odd-1', service: 'odd', address: '10.0.0.1', port: 1, tags: [null, 7, 'x'], meta: { a: null }, weights: { passing: 1, warning: 1 }, checks: [] });
    const decoded = decodeInstance({ key: 'instances/odd-1', value, createRev: 1, modRev: 1 });
    assert.deepEqual(decoded?.tags, [null, 7, 'x']);
    assert.deepEqual(decoded?.meta, { a: null });
  });

  it('a flood of distinct strings neither grows the table without bound nor breaks sharing', () => {
    for (let i = 0; i < 200_000; i++) {
      sharedString(`flood-${i}`);
      assert.ok(sharedStringCount() <= 65_536);
    }
    const one = sharedString(['after', 'the', 'flood'].join('-'));
    assert.equal(sharedString(['after', 'the', 'flood'].join('-')), one);
    const long = 'x'.repeat(300);
    assert.equal(sharedString(long), long);
  });
});
