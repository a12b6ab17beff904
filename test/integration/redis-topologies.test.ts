/**
 * The redis bus over the multi-server URL forms (issue 3), against real servers: a master
 * watched by a sentinel, and a three-master Redis Cluster. redis-bus.test.ts covers the
 * single-server behaviour; here we prove the URL reaches the right servers and pub/sub works.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import type { CatalogMessage } from '../../src/bus/bus';
import { busPair } from '../helpers/bus-pair';
import { waitFor } from '../helpers/child';
import { startRedis, startRedisCluster, startSentinel, type RedisClusterHandle, type RedisHandle, type SentinelHandle } from '../helpers/redis';

const opts = { timeout: 20_000 };

/** Over `url`: a published message reaches the subscriber exactly as sent. */
async function assertDelivers(url: string): Promise<void> {
  const { pub, seen, close } = await busPair(url, 5000);
  try {
    const message = { rev: 3, prevRev: 0, services: ['users'] };
    await pub.publish(message);
    await waitFor('the published message', () => seen.messages.length === 1);
    assert.deepEqual(seen.messages, [message]);
  } finally {
    await close();
  }
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
    await assertDelivers(sentinel.url);
  });

  it('after the master comes back, the subscriber asks the sentinel again and hears onConnect', opts, async () => {
    assert.ok(sentinel && master);
    const { pub, seen, close } = await busPair(sentinel.url, 5000);
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
    await assertDelivers(`redis+cluster://127.0.0.1:${p1},127.0.0.1:${p2}`);
  });

  it('the subscriber hears a message published on any node, whichever node it listens on', opts, async () => {
    assert.ok(cluster);
    const { seen, channel, close } = await busPair(cluster.url, 5000);
    try {
      const sent = cluster.ports.map((_, i) => ({ rev: i + 1, prevRev: i, services: [`svc-${i}`] }));
      for (const [i, port] of cluster.ports.entries()) await publishOn(port, channel, sent[i]);
      await waitFor('one message from every node', () => seen.messages.length === sent.length);
      // Published on different nodes, they reach the subscriber's node over the cluster bus
      // by different paths: each arrives once, in no promised order (that is what prevRev is for).
      assert.deepEqual([...seen.messages].sort((a, b) => a.rev - b.rev), sent);
    } finally {
      await close();
    }
  });

  it('when the node it listens on dies, the subscriber moves to another node and hears onConnect (so it resyncs)', opts, async () => {
    assert.ok(cluster);
    // Seeded with one node only: the others are learnt from the cluster itself.
    const { seen, channel, close } = await busPair(`redis+cluster://127.0.0.1:${cluster.ports[0]}`, 5000);
    try {
      const listening = await nodeWithClient(cluster.ports, 'switchboard-subscriber');
      assert.equal(listening, cluster.ports[0]);
      await cluster.nodes[0].stop('SIGKILL');
      await waitFor('onConnect after the move', () => seen.connects === 2, 15_000);
      const moved = await nodeWithClient(cluster.ports.slice(1), 'switchboard-subscriber');
      assert.ok(cluster.ports.slice(1).includes(moved));
      // Published on a live node (the publisher's own cluster client may still be finding its way).
      const after = { rev: 9, prevRev: 8, services: ['after-failover'] };
      await publishOn(cluster.ports[cluster.ports.length - 1], channel, after);
      await waitFor('the message after the move', () => seen.messages.some((m) => m.rev === 9));
    } finally {
      await close();
      await cluster.nodes[0].restart();
    }
  });
});

describe('redis bus over redis+cluster://, a seed that never answers', () => {
  let cluster: RedisClusterHandle | undefined;
  let silent: net.Server | undefined;
  before(async () => {
    cluster = await startRedisCluster(3);
    // Accepts connections and says nothing: a hung node, or not Redis at all.
    silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent?.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    silent?.close();
    await cluster?.destroy();
  });

  it('is given up after a bounded wait, and the next seed is subscribed to', opts, async () => {
    assert.ok(cluster && silent);
    const silentPort = (silent.address() as net.AddressInfo).port;
    const { seen, channel, close } = await busPair(`redis+cluster://127.0.0.1:${silentPort},127.0.0.1:${cluster.ports[1]}`, 5000).catch((err: unknown) => {
      throw new Error(`no onConnect past the silent seed: ${String(err)}`);
    });
    try {
      await publishOn(cluster.ports[2], channel, { rev: 5, prevRev: 4, services: ['past-silent'] });
      await waitFor('the message through the second seed', () => seen.messages.some((m) => m.rev === 5));
    } finally {
      await close();
    }
  });
});

/** The port of the node among `ports` that has a client connection named `name`. */
async function nodeWithClient(ports: number[], name: string): Promise<number> {
  let found = -1;
  await waitFor(`a ${name} connection on one of ${ports.join(',')}`, async () => {
    for (const port of ports) {
      const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      try {
        await client.connect();
        const list = String(await client.call('CLIENT', 'LIST'));
        if (list.split('\n').some((line) => line.includes(` name=${name} `))) found = port;
      } catch {
        // a node that is down
      } finally {
        client.disconnect();
      }
      if (found !== -1) return true;
    }
    return false;
  });
  return found;
}
