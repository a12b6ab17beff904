import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressHex, hexAddress, parseQueryName, type QueryName } from '../../src/registry/dns/names';

const rules = { domains: ['consul', 'sd.example'], datacenter: 'dc1' };

describe('DNS query names (Consul forms)', () => {
  const cases: Array<[string, QueryName]> = [
    ['web.service.consul', { kind: 'service', service: 'web', domain: 'consul' }],
    ['web.service.consul.', { kind: 'service', service: 'web', domain: 'consul' }],
    ['WEB.Service.CONSUL', { kind: 'service', service: 'web', domain: 'consul' }],
    ['web.service.dc1.consul', { kind: 'service', service: 'web', domain: 'consul' }],
    ['v1.web.service.consul', { kind: 'service', service: 'web', tag: 'v1', domain: 'consul' }],
    ['v1.web.service.dc1.consul', { kind: 'service', service: 'web', tag: 'v1', domain: 'consul' }],
    ['_web._tcp.service.consul', { kind: 'service', service: 'web', domain: 'consul' }],
    ['_web._v1.service.consul', { kind: 'service', service: 'web', tag: 'v1', domain: 'consul' }],
    ['web.service.sd.example', { kind: 'service', service: 'web', domain: 'sd.example' }],
    ['switchboard.node.consul', { kind: 'node', node: 'switchboard', domain: 'consul' }],
    ['7f000001.addr.consul', { kind: 'addr', address: '127.0.0.1', domain: 'consul' }],
    ['7f000001.addr.dc1.consul', { kind: 'addr', address: '127.0.0.1', domain: 'consul' }],
    ['consul', { kind: 'apex', domain: 'consul' }],
    ['consul.', { kind: 'apex', domain: 'consul' }],
    ['web.service.dc2.consul', { kind: 'unknown', domain: 'consul' }],
    ['a.b.web.service.consul', { kind: 'unknown', domain: 'consul' }],
    ['service.consul', { kind: 'unknown', domain: 'consul' }],
    ['.service.consul', { kind: 'unknown', domain: 'consul' }],
    ['web.query.consul', { kind: 'unknown', domain: 'consul' }],
    ['zz000001.addr.consul', { kind: 'unknown', domain: 'consul' }],
    ['7f0001.addr.consul', { kind: 'unknown', domain: 'consul' }],
    ['_web.tcp.service.consul', { kind: 'service', service: 'tcp', tag: '_web', domain: 'consul' }],
    ['__._.service.consul', { kind: 'unknown', domain: 'consul' }],
    ['example.com', { kind: 'foreign' }],
    ['notconsul', { kind: 'foreign' }],
    ['web.service.consul.evil.com', { kind: 'foreign' }],
    ['', { kind: 'foreign' }],
  ];
  for (const [name, expected] of cases) it(JSON.stringify(name), () => assert.deepEqual(parseQueryName(name, rules), expected));
});

describe('.addr. hex labels', () => {
  it('IPv4 both ways', () => {
    assert.equal(addressHex('10.0.255.1'), '0a00ff01');
    assert.equal(hexAddress('0a00ff01'), '10.0.255.1');
  });
  it('IPv6 both ways, :: and an IPv4 tail expanded', () => {
    assert.equal(addressHex('2001:db8::1'), '20010db8000000000000000000000001');
    assert.equal(addressHex('::ffff:127.0.0.1'), '00000000000000000000ffff7f000001');
    assert.equal(hexAddress('20010db8000000000000000000000001'), '2001:0db8:0000:0000:0000:0000:0000:0001');
  });
  it('a host name has no hex form', () => assert.equal(addressHex('db.internal'), undefined));
});
