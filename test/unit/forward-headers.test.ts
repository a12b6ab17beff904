import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { isSwitchboardError } from '../../src/errors';
import { TrustedProxies, isHostHeader, readRequestHead, type RequestHead } from '../../src/proxy/forward/request-head';
import { nominatedHeaders } from '../../src/proxy/forward/header-list';
import { clientResponseHeaders, invalidStatusLine } from '../../src/proxy/forward/response-head';

function request(rawHeaders: string[], options: { url?: string; peer?: string } = {}): IncomingMessage {
  return { rawHeaders, url: options.url ?? '/', socket: { remoteAddress: options.peer ?? '192.0.2.10' } } as unknown as IncomingMessage;
}

function head(rawHeaders: string[], options: { trusted?: string[]; peer?: string; maxHeaders?: number } = {}): RequestHead {
  const trustedProxies = options.trusted ? new TrustedProxies(options.trusted) : undefined;
  const result = readRequestHead(request(rawHeaders, options), { maxHeaders: options.maxHeaders ?? 100, trustedProxies });
  assert.ok(!isSwitchboardError(result), String(result));
  return result;
}

function values(flat: readonly string[], name: string): string[] {
  const found: string[] = [];
  for (let i = 0; i < flat.length; i += 2) if (flat[i].toLowerCase() === name) found.push(flat[i + 1]);
  return found;
}

describe('request headers for the upstream', () => {
  it('drops hop-by-hop headers and what Connection names, keeps Host and framing whatever it names', () => {
    const h = head([
      'Host', 'users.svc', 'Connection', 'keep-alive, X-Hop, host, content-length', 'X-Hop', '1', 'Keep-Alive', '5',
      'Proxy-Connection', 'x', 'Proxy-Authorization', 'Basic a', 'Proxy-Authenticate', 'x', 'Trailer', 'X-T',
      'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'TE', 'gzip', 'Expect', '100-continue', 'Content-Length', '3', 'X-End', 'e',
    ]);
    const names = h.headers.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const gone of ['connection', 'x-hop', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'trailer', 'transfer-encoding', 'upgrade', 'te', 'expect']) {
      assert.ok(!names.includes(gone), gone);
    }
    assert.deepEqual(values(h.headers, 'host'), ['users.svc']);
    assert.deepEqual(values(h.headers, 'content-length'), ['3']);
    assert.equal(h.expectContinue, true);
    assert.equal(h.bodyLength, -1, 'chunked wins over a length (node refuses both anyway)');
  });

  it('keeps TE: trailers and the client order of end-to-end headers', () => {
    const h = head(['X-A', '1', 'Host', 'u.svc', 'TE', 'trailers', 'X-B', '2']);
    assert.deepEqual(h.headers.slice(0, 8), ['X-A', '1', 'Host', 'u.svc', 'TE', 'trailers', 'X-B', '2']);
  });

  it('replaces X-Forwarded-* and drops Forwarded from an untrusted peer', () => {
    const h = head(['Host', 'u.svc', 'X-Forwarded-For', '203.0.113.9', 'X-Forwarded-Host', 'evil', 'X-Forwarded-Proto', 'https', 'Forwarded', 'for=1.2.3.4']);
    assert.deepEqual(values(h.headers, 'x-forwarded-for'), ['192.0.2.10']);
    assert.deepEqual(values(h.headers, 'x-forwarded-host'), ['u.svc']);
    assert.deepEqual(values(h.headers, 'x-forwarded-proto'), ['http']);
    assert.deepEqual(values(h.headers, 'forwarded'), []);
  });

  it('appends to a trusted peer\'s X-Forwarded-For (several lines joined) and keeps its Proto, Host, Forwarded', () => {
    const h = head(['Host', 'u.svc', 'X-Forwarded-For', '203.0.113.9', 'X-Forwarded-For', '198.51.100.1', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'pub', 'Forwarded', 'for=1.2.3.4'], {
      trusted: ['192.0.2.0/24'],
    });
    assert.deepEqual(values(h.headers, 'x-forwarded-for'), ['203.0.113.9, 198.51.100.1, 192.0.2.10']);
    assert.deepEqual(values(h.headers, 'x-forwarded-proto'), ['https']);
    assert.deepEqual(values(h.headers, 'x-forwarded-host'), ['pub']);
    assert.deepEqual(values(h.headers, 'forwarded'), ['for=1.2.3.4']);
  });

  it('trusts by CIDR, IPv4-mapped IPv6 peers as IPv4, IPv6 ranges too', () => {
    const trusted = new TrustedProxies(['10.0.0.0/8', '::1/128', '192.0.2.7']);
    assert.equal(trusted.trusts('10.1.2.3'), true);
    assert.equal(trusted.trusts('11.0.0.1'), false);
    assert.equal(trusted.trusts('::1'), true);
    assert.equal(trusted.trusts('192.0.2.7'), true);
    assert.equal(trusted.trusts('192.0.2.8'), false);
    const h = head(['Host', 'u.svc', 'X-Forwarded-For', '1.1.1.1'], { trusted: ['10.0.0.0/8'], peer: '::ffff:10.0.0.5' });
    assert.deepEqual(values(h.headers, 'x-forwarded-for'), ['1.1.1.1, 10.0.0.5']);
    assert.throws(() => new TrustedProxies(['10.0.0.0/33']), /prefix length/);
    assert.throws(() => new TrustedProxies(['not-an-ip']), /not an address/);
  });

  it('keeps a sane x-request-id, replaces an oversized one', () => {
    assert.equal(head(['Host', 'u.svc', 'X-Request-Id', 'abc']).requestId, 'abc');
    const long = head(['Host', 'u.svc', 'X-Request-Id', 'a'.repeat(201)]);
    assert.notEqual(long.requestId, 'a'.repeat(201));
    assert.deepEqual(values(long.headers, 'x-request-id'), [long.requestId]);
  });

  it('refuses two Hosts, a bad Host, and more lines than the cap', () => {
    const refused = (raw: string[], max = 100) => readRequestHead(request(raw), { maxHeaders: max, trustedProxies: undefined });
    assert.ok(isSwitchboardError(refused(['Host', 'a', 'Host', 'b']), 'bad_request'));
    assert.ok(isSwitchboardError(refused(['Host', 'a b']), 'bad_request'));
    assert.ok(isSwitchboardError(refused(['Host', 'a', 'X', '1', 'Y', '2'], 2), 'too_many_headers'));
  });

  const hosts: Array<[string, boolean]> = [
    ['users.svc', true], ['users.svc:8080', true], ['USERS.svc.', true], ['127.0.0.1:80', true], ['[::1]:8080', true], ['[::1]', true], ['a_b.svc', true],
    ['', false], [':80', false], ['users.svc:', false], ['users.svc:123456', false], ['users.svc:8a', false], ['us ers', false], ['u@evil', false],
    ['u/x', false], ['[::1', false], ['[nope]', false], ['[::1]x', false], ['a'.repeat(301), false],
  ];
  for (const [host, ok] of hosts) it(`Host ${JSON.stringify(host.slice(0, 20))} is ${ok ? 'valid' : 'refused'}`, () => assert.equal(isHostHeader(host), ok));
});

describe('response headers for the client', () => {
  const raw = (...pairs: string[]) => pairs.map((p) => Buffer.from(p, 'latin1'));

  it('drops hop-by-hop headers and what Connection names, keeps order, case and repeats', () => {
    const headers = clientResponseHeaders(
      raw('Content-Type', 'text/plain', 'Connection', 'keep-alive, X-Secret, Content-Length', 'X-Secret', 's', 'Keep-Alive', 'timeout=9', 'Proxy-Authenticate', 'x',
        'TE', 'trailers', 'Trailer', 'X-T', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Length', '2'),
      'rid',
    );
    assert.deepEqual(headers, ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Length', '2', 'x-request-id', 'rid']);
  });

  it("keeps the upstream's own request id", () => {
    assert.deepEqual(clientResponseHeaders(raw('X-Request-Id', 'up'), 'rid'), ['X-Request-Id', 'up']);
  });

  it('passes obs-text bytes through unchanged (latin1 in, latin1 out)', () => {
    assert.deepEqual(clientResponseHeaders([Buffer.from('X-Name'), Buffer.from([0x63, 0xe9])], 'r').slice(0, 2), ['X-Name', 'c\u00e9']);
  });

  const lines: Array<[number, string, boolean]> = [
    [200, 'OK', true], [599, '', true], [999, 'x', true], [200, 'tab\tok', true], [200, 'caf\u00e9', true],
    [0, 'x', false], [99, 'x', false], [150, 'x', false], [1000, 'x', false], [200, 'O\x01K', false], [200, 'O\x7fK', false], [200, 'a\r\nb', false],
  ];
  for (const [status, reason, ok] of lines) {
    it(`status line ${status} ${JSON.stringify(reason)} is ${ok ? 'relayed' : 'refused'}`, () => assert.equal(invalidStatusLine(status, reason) === undefined, ok));
  }
});

describe('the names a Connection header nominates', () => {
  const keep = new Set(['content-length']);
  const table: Array<[string, string[] | undefined]> = [
    ['keep-alive', undefined],
    ['Close', undefined],
    ['', undefined],
    ['X-Hop', ['x-hop']],
    ['keep-alive, X-A,x-b , ,Upgrade', ['x-a', 'x-b']],
    [',, X-A ,,', ['x-a']],
    ['content-length, X-A', ['x-a']],
    ['\tX-Tab\t', ['x-tab']],
  ];
  for (const [value, expected] of table) {
    it(`${JSON.stringify(value)} → ${JSON.stringify(expected ?? [])}`, () => assert.deepEqual(nominatedHeaders(value, keep, undefined), expected));
  }

  it('adds to what an earlier Connection line nominated', () => {
    assert.deepEqual(nominatedHeaders('x-b', keep, ['x-a']), ['x-a', 'x-b']);
  });
});
