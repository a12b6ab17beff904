import { randomUUID } from 'node:crypto';
import type { BusSubscriber, CatalogMessage } from '../../src/bus/bus';
import { RedisBus } from '../../src/bus/redis-bus';
import { waitFor } from './child';

/** A subscriber that keeps every message and counts connects. */
export interface Recorder extends BusSubscriber {
  messages: CatalogMessage[];
  connects: number;
}

export function recorder(): Recorder {
  const r: Recorder = {
    messages: [],
    connects: 0,
    onMessage: (m) => r.messages.push(m),
    onConnect: () => r.connects++,
  };
  return r;
}

export interface BusPair {
  pub: RedisBus;
  sub: RedisBus;
  seen: Recorder;
  channel: string;
  close: () => Promise<void>;
}

/** A publisher bus and a subscribed bus over `url` on a fresh channel, once the SUBSCRIBE is live. */
export async function busPair(url: string, publishTimeoutMs = 1000): Promise<BusPair> {
  const channel = `catalog-${randomUUID()}`;
  const pub = new RedisBus({ url, channel, publishTimeoutMs });
  const sub = new RedisBus({ url, channel });
  const close = async (): Promise<void> => void (await Promise.all([pub.close(), sub.close()]));
  const seen = recorder();
  sub.subscribe(seen);
  await waitFor('the subscriber onConnect', () => seen.connects === 1).catch(async (err) => {
    await close();
    throw err;
  });
  return { pub, sub, seen, channel, close };
}
