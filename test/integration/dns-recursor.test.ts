/**
 * DNS recursors: names outside our zones go to the configured resolvers (here fakes on
 * loopback), in order, and only an answer from that resolver to that very question comes back.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import * as dnsPacket from 'dns-packet';
import { resolveConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log';
import { DnsServer } from '../../src/registry/dns/dns-server';
import { dig } from '../helpers/dig';

/** A resolver that answers A 127.0.0.9 to everything — after a wrong-id decoy, if asked to. */
async function fakeResolver(options: { silent?: boolean; decoy?: boolean } = {}): Promise<{ address: string; asked: number; close(): void }> {
  const socket = dgram.createSocket('udp4');
  const state = { address: '', asked: 0, close: () => socket.close() };
  socket.on('message', (message, from) => {
    state.asked++;
    if (options.silent) return;
    const query = dnsPacket.decode(message);
    const reply = (id: number, address: string) =>
      dnsPacket.encode({ id, type: 'response', flags: dnsPacket.RECURSION_AVAILABLE, questions: query.questions, answers: [{ name: query.questions?.[0].name ?? '', type: 'A', class: 'IN', ttl: 30, data: address }] });
    if (options.decoy) socket.send(reply((query.id ?? 0) ^ 1, '127.0.0.66'), from.port, from.address);
    socket.send(reply(query.id ?? 0, '127.0.0.9'), from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  state.address = `127.0.0.1:${socket.address().port}`;
  return state;
}

describe('DNS recursors', () => {
  const empty = { rev: 1, serviceInstances: () => [] };
  const servers: DnsServer[] = [];
  const resolvers: Array<{ close(): void }> = [];

  async function start(recursors: string[]): Promise<string> {
    const config = resolveConfig({ dns: { listen: '127.0.0.1:0', recursors, recursorTimeout: '300ms' } }).dns;
    const server = new DnsServer({ config, catalog: empty, datacenter: 'dc1', node: () => ({ name: 'switchboard', address: '' }), logger: silentLogger() });
    await server.start();
    servers.push(server);
    return server.address;
  }

  let silent: Awaited<ReturnType<typeof fakeResolver>>;
  let good: Awaited<ReturnType<typeof fakeResolver>>;
  before(async () => {
    silent = await fakeResolver({ silent: true });
    good = await fakeResolver({ decoy: true });
    resolvers.push(silent, good);
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    for (const r of resolvers) r.close();
  });

  it('a foreign name is forwarded; a silent recursor is skipped, a decoy with the wrong id ignored', async () => {
    const server = await start([silent.address, good.address]);
    const r = await dig(server, ['upstream.test', 'A']);
    assert.equal(r.status, 'NOERROR', r.text);
    assert.deepEqual(r.answer.map((a) => a.data), ['127.0.0.9']);
    assert.ok(!r.flags.includes('aa'), 'not our zone: not authoritative');
    assert.ok(silent.asked >= 1 && good.asked >= 1);
  });

  it('no recursor answers: SERVFAIL', async () => {
    const server = await start([silent.address]);
    const r = await dig(server, ['upstream.test', 'A']);
    assert.equal(r.status, 'SERVFAIL', r.text);
  });

  it('our own zone is never forwarded', async () => {
    const server = await start([good.address]);
    const before = good.asked;
    const r = await dig(server, ['nope.service.consul', 'A']);
    assert.equal(r.status, 'NXDOMAIN');
    assert.equal(good.asked, before);
  });
});
