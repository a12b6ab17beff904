/**
 * The redis bus over the multi-server URL forms (issue 3), against real servers: a master
 * watched by a sentinel, and a three-master Redis Cluster. redis-bus.test.ts covers the
 * single-server behaviour; here we prove the URL reaches the right servers and pub/sub works.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import type { BusSubscriber, CatalogMessage } from '../../src/bus/bus';
import { RedisBus } from '../../src/bus/redis-bus';
import { waitFor } from '../helpers/child';
import { startRedis, startRedisCluster, startSentinel, type RedisClusterHandle, type RedisHandle, type SentinelHandle } from '../helpers/redis';

const opts = { timeout: 20_000 };

interface Recorder extends BusSubscriber {
  messages: CatalogMessage[];
  connects: number;
}

function recorder(): Recorder {
  const r: Recorder = {
    messages: [],
    connects: 0,
    onMessage: (m) => r.messages.push(m),
    onConnect: () => r.connects++,
  };
  return r;
}

interface BusPair {
  pub: RedisBus;
  seen: Recorder;
  channel: string;
  close: () => Promise<void>;
}

/** A publisher bus and a subscribed bus over `url` on a fresh channel, once the SUBSCRIBE is live. */
async function busPair(url: string): Promise<BusPair> {
  const channel = `catalog-${randomUUID()}`;
  const pub = new RedisBus({ url, channel, publishTimeoutMs: 5000 });
  const sub = new RedisBus({ url, channel });
  const close = async (): Promise<void> => void (await Promise.all([pub.close(), sub.close()]));
  const seen = recorder();
  sub.subscribe(seen);
  await waitFor('the subscriber onConnect', () => seen.connects === 1).catch(async (err) => {
    await close();
    throw err;
  });
  return { pub, seen, channel, close };
}

/** Publishes one message with a plain client on `port`, bypassing the bus's own routing. */
async function publishOn(port: number, channel: string, message: CatalogMessage): Promise<void> {
  const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await client.connect();
    await client.publish(channel, JSON.stringify(message));
  } finally {
    client.disconnect();
  }
}

describe('redis bus over redis+sentinel://', () => {
  let master: RedisHandle | undefined;
  let sentinel: SentinelHandle | undefined;
  before(async () => {
    master = await startRedis();
    sentinel = await startSentinel(master);
  });
  after(async () => {
    await sentinel?.destroy();
    await master?.destroy();
  });

  it('finds the master through the sentinel and delivers a published message', opts, async () => {
    assert.ok(sentinel);
    const { pub, seen, close } = await busPair(sentinel.url);
    try {
      const message = { rev: 3, prevRev: 0, services: ['users'] };
      await pub.publish(message);
      await waitFor('the published message', () => seen.messages.length === 1);
      assert.deepEqual(seen.messages, [message]);
    } finally {
      await close();
    }
  });

  it('after the master comes back, the subscriber asks the sentinel again and hears onConnect', opts, async () => {
    assert.ok(sentinel && master);
    const { pub, seen, close } = await busPair(sentinel.url);
    try {
      await master.stop();
      await master.restart();
      await waitFor('onConnect after the master restart', () => seen.connects === 2, 15_000);
      const message = { rev: 4, prevRev: 3, services: ['orders'] };
      await waitFor('publishing through the sentinel to work again', async () => {
        await pub.publish(message);
        return true;
      });
      await waitFor('the message published after the restart', () => seen.messages.length > 0);
      assert.deepEqual(seen.messages[0], message);
    } finally {
      await close();
    }
  });
});

describe('redis bus over redis+cluster://', () => {
  let cluster: RedisClusterHandle | undefined;
  before(async () => {
    cluster = await startRedisCluster(3);
  });
  after(async () => {
    await cluster?.destroy();
  });

  it('delivers a published message across a three-master cluster from two seed nodes', opts, async () => {
    assert.ok(cluster);
    const [p1, p2] = cluster.ports;
    const { pub, seen, close } = await busPair(`redis+cluster://127.0.0.1:${p1},127.0.0.1:${p2}`);
    try {
      const message = { rev: 3, prevRev: 0, services: ['users'] };
      await pub.publish(message);
      await waitFor('the published message', () => seen.messages.length === 1);
      assert.deepEqual(seen.messages, [message]);
    } finally {
      await close();
    }
  });

  it('the subscriber hears a message published on any node, whichever node it listens on', opts, async () => {
    assert.ok(cluster);
    const { seen, channel, close } = await busPair(cluster.url);
    try {
      const sent = cluster.ports.map((_, i) => ({ rev: i + 1, prevRev: i, services: [`svc-${i}`] }));
      for (const [i, port] of cluster.ports.entries()) await publishOn(port, channel, sent[i]);
      await waitFor('one message from every node', () => seen.messages.length === sent.length);
      assert.deepEqual(seen.messages, sent);
    } finally {
      await close();
    }
  });
});
