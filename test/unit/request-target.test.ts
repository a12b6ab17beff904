import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSwitchboardError } from '../../src/errors';
import { normalizeTarget } from '../../src/proxy/forward/request-target';

/** [target as sent, what is routed and forwarded]. */
const NORMALISED: Array<[string, string]> = [
  ['/', '/'],
  ['/users/42', '/users/42'],
  ['/users/42?x=1', '/users/42?x=1'],
  ['/a//b', '/a/b'],
  ['//a', '/a'],
  ['/a/./b', '/a/b'],
  ['/a/../b', '/b'],
  ['/a/b/..', '/a/'],
  ['/a/b/.', '/a/b/'],
  ['/..', '/'],
  ['/../../etc/passwd', '/etc/passwd'],
  ['/api/users/../../admin', '/admin'],
  ['/api/users/%2e%2e/%2E%2E/admin', '/admin'],
  ['/a/%2e/b', '/a/b'],
  ['/%7Euser', '/~user'],
  ['/%41%62c', '/Abc'],
  ['/a%20b', '/a%20b'],
  ['/a%e2%82%ac', '/a%E2%82%AC'],
  ['/a/?q=/../x//y', '/a/?q=/../x//y'],
  ['/a/..?q', '/?q'],
  ['/a/.hidden', '/a/.hidden'],
  ['/a/...', '/a/...'],
  ['/a;b/c', '/a;b/c'],
];

const REFUSED: Array<[string, RegExp]> = [
  ['http://other/x', /origin-form/],
  ['other:443', /origin-form/],
  ['*', /asterisk/],
  ['/a%2Fb', /encoded slash/],
  ['/a%2fb', /encoded slash/],
  ['/a%5cb', /encoded slash or backslash/],
  ['/a\\b', /backslash/],
  ['/a%00b', /control/],
  ['/a%0Ab', /control/],
  ['/a%7f', /control/],
  ['/a\x01b', /0x01/],
  ['/a\x7fb', /0x7f/],
  ['/a b', /0x20/],
  ['/a\u00e9', /0xe9/],
  ['/a#frag', /fragment/],
  ['/a?q#frag', /fragment/],
  ['/a?q=\x00', /query/],
  ['/a/..;/admin', /dot-segment/],
  ['/a/..;jsessionid=1/x', /dot-segment/],
  ['/a/.;/b', /dot-segment/],
  ['/a%zz', /percent-escape/],
  ['/a%4', /percent-escape/],
];

describe('normalizeTarget', () => {
  for (const [input, expected] of NORMALISED) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => assert.equal(normalizeTarget(input), expected));
  }
  for (const [input, reason] of REFUSED) {
    it(`${JSON.stringify(input)} → 400`, () => {
      const result = normalizeTarget(input);
      assert.ok(isSwitchboardError(result, 'bad_request'), String(result));
      assert.equal(result.field, 'target');
      assert.match(result.message, reason);
    });
  }
  it('returns the very same string when nothing needs rewriting (no copy on the fast path)', () => {
    const target = '/users/42?x=1';
    assert.equal(normalizeTarget(target), target);
  });
});
