/**
 * The DNS interface of `switchboard all`, as a user meets it: instances registered with the
 * npm `consul` client, queried with the real `dig` over UDP and TCP. Also raw sockets sending
 * what no resolver would, and the process answering on regardless.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { dig } from '../helpers/dig';
import { SwitchboardProcess, waitFor } from '../helpers/switchboard-process';

describe('DNS: dig against switchboard all', () => {
  let sb: SwitchboardProcess;
  let consul: Consul;
  let server = '';

  before(async () => {
    sb = await SwitchboardProcess.start();
    server = sb.addresses.dns as string;
    const [host, port] = (sb.addresses.api as string).split(':');
    consul = new Consul({ host, port: Number(port) });
    await consul.agent.service.register({ name: 'web', id: 'web-1', address: '127.0.0.2', port: 8001, tags: ['v1'] });
    await consul.agent.service.register({ name: 'web', id: 'web-2', address: '127.0.0.3', port: 8002, tags: ['v2'] });
    await consul.agent.service.register({ name: 'web', id: 'web-3', address: '127.0.0.4', port: 8003, check: { ttl: '60s', status: 'passing' } as never });
    // 200 instances: more than a 512-byte UDP answer can hold.
    for (let i = 0; i < 200; i += 20) {
      await Promise.all(
        Array.from({ length: 20 }, (_, j) => consul.agent.service.register({ name: 'big', id: `big-${i + j}`, address: `127.0.${(i + j) >> 8}.${((i + j) & 255) + 1}`, port: 9000 + i + j })),
      );
    }
  });

  after(async () => {
    consul?.destroy();
    await sb?.cleanup();
  });

  it('A: every healthy instance, a non-zero TTL, authoritative', async () => {
    const r = await dig(server, ['web.service.consul', 'A']);
    assert.equal(r.status, 'NOERROR', r.text);
    assert.ok(r.flags.includes('aa'), r.text);
    assert.deepEqual(r.answer.map((a) => a.data).sort(), ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    assert.ok(r.answer.every((a) => a.ttl === 5 && a.type === 'A'));
  });

  it('SRV: ports and .addr. targets, with their A records in the additional section', async () => {
    const r = await dig(server, ['web.service.consul', 'SRV']);
    assert.equal(r.status, 'NOERROR', r.text);
    const srv = r.answer.map((a) => a.data).sort();
    assert.deepEqual(srv, ['1 1 8001 7f000002.addr.dc1.consul.', '1 1 8002 7f000003.addr.dc1.consul.', '1 1 8003 7f000004.addr.dc1.consul.']);
    assert.deepEqual(
      r.additional.filter((a) => a.type === 'A').map((a) => `${a.name} ${a.data}`).sort(),
      ['7f000002.addr.dc1.consul. 127.0.0.2', '7f000003.addr.dc1.consul. 127.0.0.3', '7f000004.addr.dc1.consul. 127.0.0.4'],
    );
  });

  it('a tag filter, and the RFC 2782 form', async () => {
    assert.deepEqual((await dig(server, ['v1.web.service.consul', 'A'])).answer.map((a) => a.data), ['127.0.0.2']);
    const rfc = await dig(server, ['_web._v2.service.consul', 'SRV']);
    assert.deepEqual(rfc.answer.map((a) => a.data), ['1 1 8002 7f000003.addr.dc1.consul.']);
    assert.equal((await dig(server, ['_web._tcp.service.dc1.consul', 'SRV'])).answer.length, 3, '_tcp means every instance');
  });

  it('an unknown name: NXDOMAIN with an SOA whose minimum is the negative TTL', async () => {
    const r = await dig(server, ['nope.service.consul', 'A']);
    assert.equal(r.status, 'NXDOMAIN', r.text);
    assert.equal(r.authority.length, 1, r.text);
    assert.equal(r.authority[0].type, 'SOA');
    assert.match(r.authority[0].data, /^ns\.consul\. hostmaster\.consul\. \d+ 3600 600 86400 5$/);
  });

  it('a known name without records of the asked type: NOERROR, no answer', async () => {
    const r = await dig(server, ['web.service.consul', 'AAAA']);
    assert.equal(r.status, 'NOERROR');
    assert.equal(r.answer.length, 0);
    assert.equal(r.authority[0]?.type, 'SOA');
  });

  it('an instance going critical leaves the answer', async () => {
    await consul.agent.check.fail('service:web-3');
    await waitFor('web-3 to leave the DNS answer', async () => !(await dig(server, ['web.service.consul', 'A'])).answer.some((a) => a.data === '127.0.0.4'), 5_000);
    await consul.agent.check.pass('service:web-3');
    await waitFor('web-3 to come back', async () => (await dig(server, ['web.service.consul', 'A'])).answer.some((a) => a.data === '127.0.0.4'), 5_000);
  });

  it('200 instances over UDP without EDNS: a 512-byte answer with TC set; dig retrying over TCP gets all 200', async () => {
    const udp = await dig(server, ['big.service.consul', 'A', '+noedns', '+ignore']);
    assert.ok(udp.flags.includes('tc'), udp.text);
    assert.ok(udp.size <= 512, `${udp.size} bytes`);
    assert.ok(udp.answer.length > 0 && udp.answer.length < 200, `${udp.answer.length} answers`);
    const retried = await dig(server, ['big.service.consul', 'A', '+noedns']);
    assert.equal(retried.answer.length, 200, 'dig retried over TCP and got every record');
    assert.ok(!retried.flags.includes('tc'));
    const tcp = await dig(server, ['big.service.consul', 'SRV', '+tcp']);
    assert.equal(tcp.answer.length, 200);
    assert.equal(tcp.additional.filter((a) => a.type === 'A').length, 200);
  });

  it('EDNS0 4096: more records fit over UDP, up to 4096 bytes, still TC when some are left out', async () => {
    const classic = await dig(server, ['big.service.consul', 'A', '+noedns', '+ignore']);
    const edns = await dig(server, ['big.service.consul', 'A', '+bufsize=4096', '+ignore']);
    assert.ok(edns.size <= 4096 && edns.size > 512, `${edns.size} bytes`);
    assert.ok(edns.answer.length > classic.answer.length, `${edns.answer.length} vs ${classic.answer.length}`);
    assert.ok(edns.flags.includes('tc'), '200 A records need more than 4096 bytes');
    const small = await dig(server, ['web.service.consul', 'A', '+bufsize=4096']);
    assert.ok(!small.flags.includes('tc'));
  });

  it('answers are shuffled per query', async () => {
    const firsts = new Set<string>();
    for (let i = 0; i < 12 && firsts.size < 2; i++) firsts.add((await dig(server, ['web.service.consul', 'A'])).answer[0].data);
    assert.ok(firsts.size >= 2, 'the first address changes between queries');
  });

  it('names outside our zone are refused: not an open resolver', async () => {
    const r = await dig(server, ['example.com', 'A']);
    assert.equal(r.status, 'REFUSED', r.text);
    assert.equal(r.answer.length, 0);
  });

  it('malformed packets over UDP and TCP: FORMERR or silence, and the server answers on', async () => {
    const [host, portText] = server.split(':');
    const port = Number(portText);
    const socket = dgram.createSocket('udp4');
    const replies: Buffer[] = [];
    socket.on('message', (m) => replies.push(m));
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    const garbage = [
      Buffer.alloc(0),
      Buffer.from([1, 2, 3]),
      Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0xff, 0xff, 0, 0, 0, 0]),
      Buffer.from([0x12, 0x35, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]),
      Buffer.alloc(4000, 0xab),
    ];
    for (const g of garbage) socket.send(g, port, host);
    await waitFor('FORMERR for the answerable ones', () => replies.length >= 2, 5_000);
    socket.close();
    for (const reply of replies) assert.equal(reply[3] & 0x0f, 1, 'FORMERR');
    // TCP: a length prefix too short for a header ends the connection at once.
    const closed = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, host, () => c.write(Buffer.from([0x00, 0x05, 1, 2, 3, 4, 5])));
      c.on('close', () => resolve(true));
      c.on('error', () => undefined);
    });
    assert.ok(closed);
    // A 65,535-byte frame that never completes does not hold the answer to anyone else.
    const stalled = net.connect(port, host, () => stalled.write(Buffer.from([0xff, 0xff, 0, 1, 2])));
    stalled.on('error', () => undefined);
    assert.equal((await dig(server, ['web.service.consul', 'A', '+tcp'])).status, 'NOERROR');
    stalled.destroy();
    assert.ok(sb.running());
  });

  it('queries, truncations and latency are on /metrics', async () => {
    const res = await fetch(`http://${sb.addresses.admin}/metrics`);
    const text = await res.text();
    assert.match(text, /^switchboard_dns_queries_total\{qtype="A",rcode="NOERROR",transport="udp"\} [1-9]/m);
    assert.match(text, /^switchboard_dns_queries_total\{qtype="A",rcode="REFUSED",transport="udp"\} [1-9]/m);
    assert.match(text, /^switchboard_dns_truncated_total\{transport="udp"\} [1-9]/m);
    assert.match(text, /^switchboard_dns_query_duration_seconds_bucket\{/m);
  });
});
