import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSwitchboardError } from '../../src/errors';
import { Authorizer, mergeRules, parseRules } from '../../src/registry/acl/rules';

const HCL = `
# users may be written, everything else read
service "users" { policy = "write" }
service_prefix "" { policy = "read" }
service_prefix "secret-" { policy = "deny" }
node_prefix "" { policy = "read" }
`;

describe('ACL rules', () => {
  const cases: Array<{ rules: string; fallback: 'deny' | 'write'; service: string; read: boolean; write: boolean }> = [
    { rules: HCL, fallback: 'deny', service: 'users', read: true, write: true },
    { rules: HCL, fallback: 'deny', service: 'orders', read: true, write: false },
    { rules: HCL, fallback: 'deny', service: 'secret-keys', read: false, write: false },
    { rules: '', fallback: 'deny', service: 'users', read: false, write: false },
    { rules: '', fallback: 'write', service: 'users', read: true, write: true },
    { rules: '{"service": {"users": {"policy": "read"}}}', fallback: 'deny', service: 'users', read: true, write: false },
    { rules: '{"service_prefix": {"ord": {"policy": "write"}}}', fallback: 'deny', service: 'orders', read: true, write: true },
    { rules: 'acl = "write"', fallback: 'deny', service: 'anything', read: true, write: true },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.rules.trim().slice(0, 40))} (default ${c.fallback}) on ${c.service}: read ${c.read}, write ${c.write}`, () => {
      const auth = new Authorizer(parseRules(c.rules), c.fallback);
      assert.equal(auth.serviceRead(c.service), c.read);
      assert.equal(auth.serviceWrite(c.service), c.write);
    });
  }

  it('merging policies keeps the most permissive rule per name', () => {
    const auth = new Authorizer(mergeRules([parseRules('service "a" { policy = "read" }'), parseRules('service "a" { policy = "write" }')]), 'deny');
    assert.equal(auth.serviceWrite('a'), true);
  });

  it('rules it cannot read are a 400 naming the field', () => {
    for (const bad of ['service "x" { policy = "admin" }', 'whatever', '{"service": {"x": {"policy": 1}}}']) {
      assert.throws(() => parseRules(bad), (err: unknown) => isSwitchboardError(err, 'bad_request'), bad);
    }
  });
});
