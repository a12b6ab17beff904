import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';

import { BusUnavailableError } from '../../src/bus/redis-bus';
import { busPair, recorder, type BusPair } from '../helpers/bus-pair';
import { waitFor } from '../helpers/child';
import { startRedis, type RedisHandle } from '../helpers/redis';

const opts = { timeout: 30_000 };

let redis: RedisHandle;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.destroy();
});

/** A publisher bus and a subscribed bus on one fresh channel on this file's redis-server. */
const pair = (): Promise<BusPair> => busPair(redis.url);

describe('redis bus against a real redis-server', () => {
  it('delivers published messages in order to every subscriber', opts, async () => {
    const { pub, sub, seen, close } = await pair();
    try {
      const late = recorder();
      sub.subscribe(late);
      await waitFor('onConnect for a subscriber added while connected', () => late.connects === 1);
      const messages = [
        { rev: 5, prevRev: 0, services: ['users'] },
        { rev: 7, prevRev: 5, services: ['users', 'orders'] },
      ];
      for (const m of messages) await pub.publish(m);
      await waitFor('both messages', () => seen.messages.length === 2 && late.messages.length === 2);
      assert.deepEqual(seen.messages, messages);
      assert.deepEqual(late.messages, messages);
    } finally {
      await close();
    }
  });

  it('while Redis is down publish rejects; after it returns subscribers hear onConnect again', opts, async () => {
    const { pub, seen, close } = await pair();
    try {
      await pub.publish({ rev: 1, prevRev: 0, services: ['a'] });
      await waitFor('the first message', () => seen.messages.length === 1);

      await redis.stop();
      await assert.rejects(pub.publish({ rev: 2, prevRev: 1, services: ['a'] }), BusUnavailableError);
      await redis.restart();

      await waitFor('onConnect after the restart', () => seen.connects === 2, 15_000);
      await waitFor('publishing to work again', async () => {
        await pub.publish({ rev: 3, prevRev: 2, services: ['b'] });
        return true;
      });
      await waitFor('a message after the restart', () => seen.messages.some((m) => m.rev === 3));
      assert.deepEqual(seen.messages.map((m) => m.rev).filter((r) => r !== 3), [1], 'the message published while down was not delivered');
    } finally {
      await close();
    }
  });

  it('drops malformed messages and keeps delivering valid ones', opts, async () => {
    const { pub, seen, channel, close } = await pair();
    const raw = new Redis(redis.url);
    try {
      const malformed = [
        'not json',
        'null',
        '[1,2]',
        JSON.stringify({ rev: '7', prevRev: 6, services: [] }),
        JSON.stringify({ rev: 7, prevRev: 6 }),
        JSON.stringify({ rev: 7, prevRev: 6, services: ['ok', 3] }),
        JSON.stringify({ rev: 7, prevRev: 8, services: [] }),
        JSON.stringify({ rev: -1, prevRev: 0, services: [] }),
        JSON.stringify({ rev: 1.5, prevRev: 0, services: [] }),
        // Well-formed but huge: not even parsed.
        JSON.stringify({ rev: 8, prevRev: 7, services: Array.from({ length: 120_000 }, (_, i) => `service-${i}`) }),
      ];
      for (const m of malformed) await raw.publish(channel, m);
      const valid = { rev: 9, prevRev: 8, services: ['users'] };
      await pub.publish(valid);
      // One channel, one connection: messages arrive in publish order, so the valid one comes last.
      await waitFor('the valid message', () => seen.messages.length > 0);
      assert.deepEqual(seen.messages, [valid]);
    } finally {
      raw.disconnect();
      await close();
    }
  });
});
