import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RouteRule } from '../../src/config/types';
import { isSwitchboardError } from '../../src/errors';
import { Router, parsePrefixTag, type RouterOptions } from '../../src/proxy/router';

/** services: name → tags. */
function router(options: Partial<RouterOptions>, services: Record<string, string[]> = {}): Router {
  const r = new Router({ domain: 'svc', routes: [], pathRouting: false, stripServicePrefix: false, ...options });
  for (const [name, tags] of Object.entries(services)) r.setService(name, tags);
  return r;
}

const rule = (r: Partial<RouteRule> & { service: string }): RouteRule => ({ strip: false, ...r });

interface Case {
  name: string;
  options?: Partial<RouterOptions>;
  services?: Record<string, string[]>;
  host?: string;
  url: string;
  expected: { service: string; path: string } | undefined;
}

const cases: Case[] = [
  // Host suffix <service>.<domain>
  { name: 'host suffix', services: { users: [] }, host: 'users.svc', url: '/x', expected: { service: 'users', path: '/x' } },
  { name: 'host suffix ignores the port', services: { users: [] }, host: 'users.svc:8080', url: '/', expected: { service: 'users', path: '/' } },
  { name: 'host suffix is case-insensitive', services: { users: [] }, host: 'USERS.Svc', url: '/', expected: { service: 'users', path: '/' } },
  { name: 'host suffix with a trailing dot', services: { users: [] }, host: 'users.svc.', url: '/', expected: { service: 'users', path: '/' } },
  { name: 'host suffix needs the service to exist', services: { users: [] }, host: 'orders.svc', url: '/', expected: undefined },
  { name: 'bare domain is no service', services: { users: [] }, host: 'svc', url: '/', expected: undefined },
  { name: 'other domain does not match', services: { users: [] }, host: 'users.example.com', url: '/', expected: undefined },
  { name: 'dotted service names', services: { 'v2.users': [] }, host: 'v2.users.svc', url: '/', expected: { service: 'v2.users', path: '/' } },
  // Explicit host rules
  {
    name: 'explicit host rule beats the host suffix',
    options: { routes: [rule({ host: 'users.svc', service: 'legacy' })] },
    services: { users: [] },
    host: 'users.svc:80',
    url: '/a',
    expected: { service: 'legacy', path: '/a' },
  },
  {
    name: 'explicit host rule beats prefix rules',
    options: { routes: [rule({ host: 'api.example.com', service: 'api' }), rule({ prefix: '/a', service: 'other' })] },
    host: 'API.example.com',
    url: '/a',
    expected: { service: 'api', path: '/a' },
  },
  // Prefix rules
  { name: 'prefix matches itself', options: { routes: [rule({ prefix: '/api', service: 'api' })] }, url: '/api', expected: { service: 'api', path: '/api' } },
  { name: 'prefix matches below it', options: { routes: [rule({ prefix: '/api', service: 'api' })] }, url: '/api/x/y', expected: { service: 'api', path: '/api/x/y' } },
  { name: 'prefix matches before a query', options: { routes: [rule({ prefix: '/api', service: 'api' })] }, url: '/api?q=1', expected: { service: 'api', path: '/api?q=1' } },
  { name: 'prefix does not match inside a segment', options: { routes: [rule({ prefix: '/api', service: 'api' })] }, url: '/apix', expected: undefined },
  { name: 'a slash in the query is not a boundary', options: { routes: [rule({ prefix: '/api', service: 'api' })] }, url: '/apix?r=/api', expected: undefined },
  {
    name: 'longest prefix wins',
    options: { routes: [rule({ prefix: '/api', service: 'api' }), rule({ prefix: '/api/users', service: 'users' })] },
    url: '/api/users/7',
    expected: { service: 'users', path: '/api/users/7' },
  },
  {
    name: 'shorter prefix when the longer does not match',
    options: { routes: [rule({ prefix: '/api', service: 'api' }), rule({ prefix: '/api/users', service: 'users' })] },
    url: '/api/usersx',
    expected: { service: 'api', path: '/api/usersx' },
  },
  { name: 'root prefix catches everything', options: { routes: [rule({ prefix: '/', service: 'web' })] }, url: '/any/thing', expected: { service: 'web', path: '/any/thing' } },
  { name: 'trailing slash in a rule is normalised', options: { routes: [rule({ prefix: '/api/', service: 'api' })] }, url: '/api', expected: { service: 'api', path: '/api' } },
  { name: 'strip removes the prefix', options: { routes: [rule({ prefix: '/api', service: 'api', strip: true })] }, url: '/api/x?q', expected: { service: 'api', path: '/x?q' } },
  { name: 'strip of the whole path leaves /', options: { routes: [rule({ prefix: '/api', service: 'api', strip: true })] }, url: '/api', expected: { service: 'api', path: '/' } },
  { name: 'strip before a query keeps the query', options: { routes: [rule({ prefix: '/api', service: 'api', strip: true })] }, url: '/api?q=1', expected: { service: 'api', path: '/?q=1' } },
  {
    name: 'host suffix beats prefix rules',
    options: { routes: [rule({ prefix: '/', service: 'web' })] },
    services: { users: [] },
    host: 'users.svc',
    url: '/x',
    expected: { service: 'users', path: '/x' },
  },
  {
    name: 'unknown host falls through to prefix rules',
    options: { routes: [rule({ prefix: '/', service: 'web' })] },
    host: 'nobody.svc',
    url: '/x',
    expected: { service: 'web', path: '/x' },
  },
  // Tags
  { name: 'urlprefix tag', services: { users: ['urlprefix-/api/users'] }, url: '/api/users/1', expected: { service: 'users', path: '/api/users/1' } },
  { name: 'urlprefix tag with strip', services: { users: ['urlprefix-/api/users strip=/api'] }, url: '/api/users/1', expected: { service: 'users', path: '/users/1' } },
  { name: 'urlprefix host tag', services: { web: ['urlprefix-www.example.com/'] }, host: 'WWW.example.com:8443', url: '/p', expected: { service: 'web', path: '/p' } },
  { name: 'urlprefix host tag needs its host', services: { web: ['urlprefix-www.example.com/'] }, host: 'other.example.com', url: '/p', expected: undefined },
  {
    name: 'urlprefix host + path tag with strip',
    services: { v1: ['urlprefix-api.example.com/v1 strip=/v1'], web: ['urlprefix-api.example.com/'] },
    host: 'api.example.com',
    url: '/v1/orders',
    expected: { service: 'v1', path: '/orders' },
  },
  { name: 'other tags are ignored', services: { users: ['primary', 'urlprefix-nopath'] }, url: '/primary', expected: undefined },
  {
    name: 'config prefix outranks the same tag prefix',
    options: { routes: [rule({ prefix: '/api', service: 'configured' })] },
    services: { tagged: ['urlprefix-/api'] },
    url: '/api',
    expected: { service: 'configured', path: '/api' },
  },
  {
    name: 'a longer tag prefix beats a shorter config prefix',
    options: { routes: [rule({ prefix: '/api', service: 'configured' })] },
    services: { users: ['urlprefix-/api/users'] },
    url: '/api/users',
    expected: { service: 'users', path: '/api/users' },
  },
  {
    name: 'two services claiming one prefix: the smaller name wins, deterministically',
    services: { zeta: ['urlprefix-/shared'], alpha: ['urlprefix-/shared'] },
    url: '/shared',
    expected: { service: 'alpha', path: '/shared' },
  },
  // Implicit path routing
  { name: 'implicit path route', options: { pathRouting: true }, services: { users: [] }, url: '/users/1', expected: { service: 'users', path: '/users/1' } },
  { name: 'implicit path route, stripped', options: { pathRouting: true, stripServicePrefix: true }, services: { users: [] }, url: '/users/1?x', expected: { service: 'users', path: '/1?x' } },
  { name: 'implicit path route to the bare service, stripped', options: { pathRouting: true, stripServicePrefix: true }, services: { users: [] }, url: '/users?x=/a', expected: { service: 'users', path: '/?x=/a' } },
  { name: 'implicit path route needs the service', options: { pathRouting: true }, services: { users: [] }, url: '/orders/1', expected: undefined },
  { name: 'implicit path routing off', services: { users: [] }, url: '/users/1', expected: undefined },
  {
    name: 'prefix rules beat implicit path routing',
    options: { pathRouting: true, routes: [rule({ prefix: '/users', service: 'other' })] },
    services: { users: [] },
    url: '/users/1',
    expected: { service: 'other', path: '/users/1' },
  },
  { name: 'no host, no rules: no route', url: '/', expected: undefined },
];

describe('Router.route', () => {
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(router(c.options ?? {}, c.services).route(c.host, c.url), c.expected);
    });
  }
});

describe('Router updates', () => {
  it('routes a tag prefix only while the service carries the tag', () => {
    const r = router({}, { users: ['urlprefix-/u'] });
    assert.equal(r.route(undefined, '/u/1')?.service, 'users');
    r.setService('users', ['urlprefix-/people']);
    assert.equal(r.route(undefined, '/u/1'), undefined);
    assert.equal(r.route(undefined, '/people')?.service, 'users');
  });

  it('forgets a removed service: host, tags and implicit path', () => {
    const r = router({ pathRouting: true }, { users: ['urlprefix-/u'] });
    r.removeService('users');
    assert.equal(r.route('users.svc', '/users'), undefined);
    assert.equal(r.route(undefined, '/u'), undefined);
    assert.equal(r.hasService('users'), false);
  });

  it('gives a contested prefix to the other claimant when the winner leaves', () => {
    const r = router({}, { alpha: ['urlprefix-/shared'], zeta: ['urlprefix-/shared'] });
    r.removeService('alpha');
    assert.equal(r.route(undefined, '/shared')?.service, 'zeta');
  });

  it('keeps config rules when a service with the same prefix tag leaves', () => {
    const r = router({ routes: [rule({ prefix: '/api', service: 'configured' })] }, { tagged: ['urlprefix-/api'] });
    r.removeService('tagged');
    assert.equal(r.route(undefined, '/api')?.service, 'configured');
  });

  it('stays a map lookup with 10,000 services', () => {
    const services: Record<string, string[]> = {};
    for (let i = 0; i < 10_000; i++) services[`s${i}`] = [`urlprefix-/p${i}`];
    const r = router({ pathRouting: true }, services);
    assert.deepEqual(r.route(undefined, '/p9999/x'), { service: 's9999', path: '/p9999/x' });
    assert.deepEqual(r.route('s42.svc', '/'), { service: 's42', path: '/' });
    assert.deepEqual(r.route(undefined, '/s7/y'), { service: 's7', path: '/s7/y' });
  });
});

describe('Router config validation', () => {
  const invalid: Array<{ name: string; rule: RouteRule }> = [
    { name: 'both host and prefix', rule: rule({ host: 'a', prefix: '/a', service: 's' }) },
    { name: 'neither host nor prefix', rule: rule({ service: 's' }) },
    { name: 'a prefix without a leading slash', rule: rule({ prefix: 'api', service: 's' }) },
    { name: 'no service', rule: rule({ prefix: '/a', service: '' }) },
  ];
  for (const c of invalid) {
    it(`rejects a rule with ${c.name}`, () => {
      assert.throws(() => router({ routes: [c.rule] }), (err) => isSwitchboardError(err, 'config_invalid'));
    });
  }
});

describe('parsePrefixTag', () => {
  const tags: Array<[string, ReturnType<typeof parsePrefixTag>]> = [
    ['urlprefix-/api', { host: '', prefix: '/api', strip: undefined }],
    ['urlprefix-/api/ strip=/api', { host: '', prefix: '/api', strip: '/api' }],
    ['urlprefix-Example.com:8080/v1', { host: 'example.com', prefix: '/v1', strip: undefined }],
    ['urlprefix-example.com/ proto=http', { host: 'example.com', prefix: '/', strip: undefined }],
    ['urlprefix-example.com', undefined],
    ['prefix-/api', undefined],
  ];
  for (const [tag, expected] of tags) {
    it(`parses ${JSON.stringify(tag)}`, () => assert.deepEqual(parsePrefixTag(tag), expected));
  }
});
