import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as dnsPacket from 'dns-packet';
import type { Answer, Packet } from 'dns-packet';
import type { HealthStatus, Instance } from '../../src/catalog/model';
import { resolveConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log';
import { buildAnswer, weightedShuffle, type QueryType } from '../../src/registry/dns/answers';
import { DnsServer } from '../../src/registry/dns/dns-server';
import { parseQueryName } from '../../src/registry/dns/names';
import { encodeResponse } from '../../src/registry/dns/wire';
import { FakeClock } from '../helpers/fake-clock';

function inst(id: string, service: string, address: string, port: number, options: { status?: HealthStatus; tags?: string[]; weight?: number } = {}): Instance {
  return {
    id,
    service,
    address,
    port,
    tags: options.tags ?? [],
    meta: {},
    weights: { passing: options.weight ?? 1, warning: 1 },
    checks: options.status === undefined ? [] : [{ checkId: `c-${id}`, name: 'c', type: 'ttl', status: options.status, output: '', statusSince: 0 }],
    createIndex: 1,
    modifyIndex: 1,
  };
}

const CATALOG: Instance[] = [
  inst('w1', 'web', '10.0.0.1', 8001, { tags: ['v1'] }),
  inst('w2', 'web', '10.0.0.2', 8002, { tags: ['V2'] }),
  inst('w3', 'web', '10.0.0.3', 8003, { status: 'warning' }),
  inst('w4', 'web', '10.0.0.4', 8004, { status: 'critical' }),
  inst('w5', 'web', '10.0.0.1', 9001),
  inst('v6', 'six', '2001:db8::1', 80),
  inst('h1', 'named', 'db.internal', 5432),
  inst('d1', 'down', '10.0.1.1', 80, { status: 'critical' }),
];
const catalog = { rev: 42, serviceInstances: (s: string) => CATALOG.filter((i) => i.service === s) };
const node = { name: 'switchboard', address: '127.0.0.1' };
const config = { serviceTtl: 5, nodeTtl: 7, negativeTtl: 3, onlyPassing: false, datacenter: 'dc1' };
const rules = { domains: ['consul'], datacenter: 'dc1' };

function answer(name: string, type: QueryType, overrides: Partial<typeof config> = {}) {
  const query = parseQueryName(name, rules);
  assert.notEqual(query.kind, 'foreign');
  return buildAnswer({ name, type }, query as Exclude<typeof query, { kind: 'foreign' }>, catalog, node, { ...config, ...overrides });
}

const data = (records: Answer[]) => records.map((r) => `${r.type} ${typeof (r as { data?: unknown }).data === 'object' ? JSON.stringify((r as { data: unknown }).data) : String((r as { data?: unknown }).data)}`).sort();

describe('DNS answers', () => {
  const cases: Array<{ name: string; q: string; type: QueryType; rcode: string; answers: string[]; additionals?: string[]; overrides?: Partial<typeof config> }> = [
    { name: 'A: passing and warning, critical left out, one record per address', q: 'web.service.consul', type: 'A', rcode: 'NOERROR', answers: ['A 10.0.0.1', 'A 10.0.0.2', 'A 10.0.0.3'] },
    { name: 'A with onlyPassing', q: 'web.service.consul', type: 'A', rcode: 'NOERROR', answers: ['A 10.0.0.1', 'A 10.0.0.2'], overrides: { onlyPassing: true } },
    { name: 'tag filter, case-insensitive', q: 'v2.web.service.consul', type: 'A', rcode: 'NOERROR', answers: ['A 10.0.0.2'] },
    { name: 'RFC 2782 with a tag', q: '_web._v1.service.consul', type: 'A', rcode: 'NOERROR', answers: ['A 10.0.0.1'] },
    {
      name: 'SRV: one per instance, targets in .addr., their A records additional',
      q: 'web.service.consul',
      type: 'SRV',
      rcode: 'NOERROR',
      answers: [8001, 8002, 8003, 9001].map((port, i) => `SRV {"priority":1,"weight":1,"port":${port},"target":"0a00000${[1, 2, 3, 1][i]}.addr.dc1.consul"}`),
      additionals: ['A 10.0.0.1', 'A 10.0.0.2', 'A 10.0.0.3'],
    },
    { name: 'AAAA of an IPv6 instance', q: 'six.service.consul', type: 'AAAA', rcode: 'NOERROR', answers: ['AAAA 2001:db8::1'] },
    { name: 'A of an IPv6-only service: NODATA', q: 'six.service.consul', type: 'A', rcode: 'NOERROR', answers: [] },
    { name: 'TXT of a service: NODATA', q: 'web.service.consul', type: 'TXT', rcode: 'NOERROR', answers: [] },
    { name: 'a service named by host: CNAME', q: 'named.service.consul', type: 'A', rcode: 'NOERROR', answers: ['CNAME db.internal'] },
    { name: 'SRV of a service named by host: the host is the target', q: 'named.service.consul', type: 'SRV', rcode: 'NOERROR', answers: ['SRV {"priority":1,"weight":1,"port":5432,"target":"db.internal"}'], additionals: [] },
    { name: 'unknown service: NXDOMAIN', q: 'nope.service.consul', type: 'A', rcode: 'NXDOMAIN', answers: [] },
    { name: 'no healthy instance: NXDOMAIN', q: 'down.service.consul', type: 'A', rcode: 'NXDOMAIN', answers: [] },
    { name: 'a tag nobody has: NXDOMAIN', q: 'v9.web.service.consul', type: 'A', rcode: 'NXDOMAIN', answers: [] },
    { name: 'node', q: 'switchboard.node.consul', type: 'A', rcode: 'NOERROR', answers: ['A 127.0.0.1'] },
    { name: 'unknown node', q: 'other.node.consul', type: 'A', rcode: 'NXDOMAIN', answers: [] },
    { name: 'addr', q: '0a000009.addr.consul', type: 'A', rcode: 'NOERROR', answers: ['A 10.0.0.9'] },
    { name: 'apex SOA', q: 'consul', type: 'SOA', rcode: 'NOERROR', answers: ['SOA {"mname":"ns.consul","rname":"hostmaster.consul","serial":42,"refresh":3600,"retry":600,"expire":86400,"minimum":3}'] },
    { name: 'another datacenter: NXDOMAIN', q: 'web.service.dc9.consul', type: 'A', rcode: 'NXDOMAIN', answers: [] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const built = answer(c.q, c.type, c.overrides);
      assert.equal(built.rcode, c.rcode);
      assert.deepEqual(data(built.answers), [...c.answers].sort());
      if (c.additionals) assert.deepEqual(data(built.additionals), [...c.additionals].sort());
      if (c.answers.length === 0) {
        // RFC 2308: negative answers carry the SOA, its minimum the negative TTL.
        assert.equal(built.authorities.length, 1);
        const soa = built.authorities[0] as Answer & { data: { minimum: number } };
        assert.equal(soa.type, 'SOA');
        assert.equal((soa as { ttl?: number }).ttl, 3);
        assert.equal(soa.data.minimum, 3);
      }
    });
  }

  it('TTLs: service records the service TTL, node and addr records the node TTL', () => {
    assert.ok(answer('web.service.consul', 'A').answers.every((a) => (a as { ttl?: number }).ttl === 5));
    assert.ok(answer('switchboard.node.consul', 'A').answers.every((a) => (a as { ttl?: number }).ttl === 7));
  });

  it('SRV weight is the instance weight', () => {
    const heavy = inst('x', 'x', '10.0.0.1', 1, { weight: 10 });
    const built = buildAnswer({ name: 'x.service.consul', type: 'SRV' }, { kind: 'service', service: 'x', domain: 'consul' }, { rev: 1, serviceInstances: () => [heavy] }, node, config);
    assert.equal((built.answers[0] as { data: { weight: number } }).data.weight, 10);
  });

  it('the order is a weighted shuffle: a 3× heavier instance comes first about 3× as often', () => {
    const a = inst('a', 's', '10.0.0.1', 1, { weight: 3 });
    const b = inst('b', 's', '10.0.0.2', 1, { weight: 1 });
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    let aFirst = 0;
    for (let i = 0; i < 4000; i++) if (weightedShuffle([a, b], random)[0] === a) aFirst++;
    assert.ok(Math.abs(aFirst / 4000 - 0.75) < 0.03, `a first ${aFirst / 4000}`);
  });
});

describe('DNS wire: size limits and truncation', () => {
  const many: Answer[] = Array.from({ length: 200 }, (_, i) => ({ name: 'web.service.consul', type: 'A', class: 'IN', ttl: 5, data: `10.0.${i >> 8}.${i & 255}` }));
  const question = { name: 'web.service.consul', type: 'A' as const, class: 'IN' as const };

  it('within the limit: everything, no TC', () => {
    const { bytes, truncated } = encodeResponse({ id: 7, question, rcode: 'NOERROR', answers: many.slice(0, 5) }, 512);
    assert.equal(truncated, false);
    const packet = dnsPacket.decode(bytes);
    assert.equal(packet.answers?.length, 5);
    assert.equal((packet.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE, 0);
  });

  it('over the limit: as many answers as fit in 512 bytes, the TC bit set', () => {
    const { bytes, truncated } = encodeResponse({ id: 7, question, rcode: 'NOERROR', answers: many }, 512);
    assert.equal(truncated, true);
    assert.ok(bytes.length <= 512);
    const packet = dnsPacket.decode(bytes);
    assert.ok((packet.answers?.length ?? 0) > 5);
    assert.notEqual((packet.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE, 0);
    // One more answer would not have fitted.
    const more = encodeResponse({ id: 7, question, rcode: 'NOERROR', answers: many.slice(0, (packet.answers?.length ?? 0) + 1) }, 512);
    assert.equal(more.truncated, true);
  });

  it('dropping only the additional section still says TC', () => {
    const extra = many.slice(0, 30).map((a) => ({ ...a, name: 'x.addr.dc1.consul' }));
    const { truncated, bytes } = encodeResponse({ id: 7, question, rcode: 'NOERROR', answers: many.slice(0, 2), additionals: extra }, 512);
    assert.equal(truncated, true);
    assert.equal(dnsPacket.decode(bytes).answers?.length, 2);
  });
});

describe('DNS server: hostile packets (no sockets)', () => {
  const dnsConfig = resolveConfig({ dns: { rateLimit: 0 } }).dns;
  const server = new DnsServer({ config: dnsConfig, catalog, datacenter: 'dc1', node: () => node, logger: silentLogger() });
  const query = (name: string, type = 'A', id = 99): Buffer => dnsPacket.encode({ id, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: type as 'A', class: 'IN' }] });
  const rcodeOf = (bytes: Buffer | undefined): string | undefined => (bytes === undefined ? undefined : (dnsPacket.decode(bytes) as { rcode?: string }).rcode);

  it('a well-formed query is answered', async () => {
    const reply = await server.answer(query('web.service.consul'), '127.0.0.1', 'udp');
    const packet = dnsPacket.decode(reply as Buffer) as Packet & { rcode?: string };
    assert.equal(packet.id, 99);
    assert.equal(packet.rcode, 'NOERROR');
    assert.equal(packet.answers?.length, 3);
  });

  const good = query('web.service.consul');
  const hostile: Array<[string, Buffer, string | undefined]> = [
    ['empty', Buffer.alloc(0), undefined],
    ['shorter than a header', good.subarray(0, 11), undefined],
    ['a response, not a query (no reflection)', Buffer.from([...good.subarray(0, 2), good[2] | 0x80, ...good.subarray(3)]), undefined],
    ['header only, claims one question', good.subarray(0, 12), 'FORMERR'],
    ['truncated question', good.subarray(0, good.length - 3), 'FORMERR'],
    ['counts claim 65535 answers', Buffer.from([...good.subarray(0, 6), 0xff, 0xff, ...good.subarray(8)]), 'FORMERR'],
    ['two questions', dnsPacket.encode({ id: 1, type: 'query', questions: [{ name: 'a.service.consul', type: 'A' }, { name: 'b.service.consul', type: 'A' }] }), 'FORMERR'],
    ['no question', dnsPacket.encode({ id: 1, type: 'query', questions: [] }), 'FORMERR'],
    ['a compression pointer to itself', Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]), 'FORMERR'],
    ['a compression pointer forward', Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 20, 0, 1, 0, 1, 0, 0, 1, 'a'.charCodeAt(0), 0]), 'FORMERR'],
    ['a label longer than the packet', Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 1, 2, 3]), 'FORMERR'],
    ['opcode STATUS', Buffer.from([...good.subarray(0, 2), (good[2] & 0x87) | (2 << 3), ...good.subarray(3)]), 'NOTIMP'],
    ['class CHAOS (version.bind)', dnsPacket.encode({ id: 1, type: 'query', questions: [{ name: 'version.bind', type: 'TXT', class: 'CH' }] }), 'REFUSED'],
    ['a foreign name without recursors', query('example.com'), 'REFUSED'],
    ['random bytes', Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7919) % 256 & 0x7f)), 'FORMERR'],
  ];
  for (const [what, bytes, expected] of hostile) {
    it(`${what}: ${expected ?? 'dropped'}`, async () => {
      assert.equal(rcodeOf(await server.answer(bytes, '127.0.0.1', 'udp')), expected);
    });
  }

  it('over the rate limit: dropped', async () => {
    const limited = new DnsServer({ config: { ...dnsConfig, rateLimit: 2 }, catalog, datacenter: 'dc1', node: () => node, logger: silentLogger() });
    const replies = await Promise.all([1, 2, 3, 4].map(() => limited.answer(good, '10.9.9.9', 'udp')));
    assert.deepEqual(replies.map((r) => r !== undefined), [true, true, false, false]);
    assert.notEqual(await limited.answer(good, '10.9.9.8', 'udp'), undefined, 'another source has its own budget');
  });

  it('store unreachable: answers are stale but given, then SERVFAIL after maxStale', async () => {
    const clock = new FakeClock();
    const stale = new DnsServer({ config: { ...dnsConfig, maxStale: 60_000 }, catalog, datacenter: 'dc1', node: () => node, logger: silentLogger(), storeHealthy: () => false, clock });
    assert.equal(rcodeOf(await stale.answer(good, '127.0.0.1', 'udp')), 'NOERROR');
    clock.advance(61_000);
    assert.equal(rcodeOf(await stale.answer(good, '127.0.0.1', 'udp')), 'SERVFAIL');
  });
});
