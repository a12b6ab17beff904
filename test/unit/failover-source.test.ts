import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FailoverSource } from '../../src/catalog/failover-source';
import type { CatalogDelta } from '../../src/catalog/model';
import type { CatalogSource } from '../../src/catalog/source';
import { SwitchboardError, isSwitchboardError } from '../../src/errors';

/** A registry stand-in: answers with its own revision, or fails the way it is told to. */
class FakeRegistry implements CatalogSource {
  calls = 0;
  failWith?: SwitchboardError;
  constructor(readonly rev: number) {}
  async changes(): Promise<CatalogDelta> {
    this.calls++;
    if (this.failWith) throw this.failWith;
    return { rev: this.rev, full: true, services: {} };
  }
  async close(): Promise<void> {}
}

const down = (): SwitchboardError => new SwitchboardError('store_unavailable', 'connection refused');

function over(...registries: FakeRegistry[]): FailoverSource {
  return new FailoverSource(registries.map((source, i) => ({ name: `r${i + 1}`, source })));
}

describe('FailoverSource', () => {
  it('asks the first registry while it answers', async () => {
    const [a, b] = [new FakeRegistry(1), new FakeRegistry(2)];
    const source = over(a, b);
    assert.equal((await source.changes(0)).rev, 1);
    assert.equal((await source.changes(0)).rev, 1);
    assert.deepEqual([a.calls, b.calls], [2, 0]);
  });

  it('moves to the next registry when one is unavailable, and sticks to it', async () => {
    const [a, b, c] = [new FakeRegistry(1), new FakeRegistry(2), new FakeRegistry(3)];
    const source = over(a, b, c);
    a.failWith = down();
    assert.equal((await source.changes(0)).rev, 2);
    assert.equal(source.active, 'r2');
    a.failWith = undefined;
    assert.equal((await source.changes(0)).rev, 2, 'no need to go back while r2 answers');
    b.failWith = down();
    assert.equal((await source.changes(0)).rev, 3);
    c.failWith = down();
    assert.equal((await source.changes(0)).rev, 1, 'wraps around to the first');
  });

  it('rejects with store_unavailable when every registry is down', async () => {
    const [a, b] = [new FakeRegistry(1), new FakeRegistry(2)];
    a.failWith = down();
    b.failWith = down();
    await assert.rejects(over(a, b).changes(0), (err) => isSwitchboardError(err, 'store_unavailable'));
    assert.deepEqual([a.calls, b.calls], [1, 1]);
  });

  it('passes on an answer that is not about availability without asking another registry', async () => {
    const [a, b] = [new FakeRegistry(1), new FakeRegistry(2)];
    a.failWith = new SwitchboardError('bad_request', 'since: not a revision');
    await assert.rejects(over(a, b).changes(0), (err) => isSwitchboardError(err, 'bad_request'));
    assert.equal(b.calls, 0);
  });

  it('needs at least one registry', () => {
    assert.throws(() => new FailoverSource([]), (err) => isSwitchboardError(err, 'config_invalid'));
  });
});

/** A registry that accepts connections and never answers (a hung process, a stuck LB). */
async function hangingRegistry(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A registry that answers every `changes` call with an empty catalog at revision 7. */
async function answeringRegistry(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ rev: 7, full: true, services: {} }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('FailoverSource over HTTP', () => {
  let hanging: Awaited<ReturnType<typeof hangingRegistry>>;
  let answering: Awaited<ReturnType<typeof answeringRegistry>>;
  before(async () => {
    hanging = await hangingRegistry();
    answering = await answeringRegistry();
  });
  after(async () => {
    await hanging?.close();
    await answering?.close();
  });

  it('gives up on a registry that accepts but never answers and moves on to the next', async () => {
    const source = FailoverSource.overHttp([hanging.url, answering.url], undefined, { timeoutMs: 100 });
    try {
      assert.equal((await source.changes(0)).rev, 7);
      assert.equal(source.active, answering.url);
    } finally {
      await source.close();
    }
  });

  it('gives a call with minRev the registry-side wait on top of the timeout, and only that call', async () => {
    const source = FailoverSource.overHttp([hanging.url], undefined, { timeoutMs: 50, minRevWaitMs: 100 });
    const budget = (err: unknown) => /no answer within (\d+) ms/.exec((err as Error).message)?.[1];
    try {
      const plain = await source.changes(0).catch((err: unknown) => err);
      const waiting = await source.changes(0, 5).catch((err: unknown) => err);
      assert.ok(isSwitchboardError(plain, 'store_unavailable') && isSwitchboardError(waiting, 'store_unavailable'));
      assert.deepEqual([budget(plain), budget(waiting)], ['50', '150']);
    } finally {
      await source.close();
    }
  });

  it('gives up on a hanging registry after 2 s by default', async () => {
    const source = FailoverSource.overHttp([hanging.url]);
    const err = await source.changes(0).catch((e: unknown) => e);
    await source.close();
    assert.ok(isSwitchboardError(err, 'store_unavailable'));
    assert.match((err as Error).message, /no answer within 2000 ms/);
  });
});
