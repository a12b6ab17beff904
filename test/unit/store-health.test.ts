import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { StoreHealth } from '../../src/registry/store-health';
import { waitFor } from '../helpers/child';

type Mode = 'up' | 'down' | 'hang';

/** A store whose reads answer, fail, or never answer, as the test says. */
class FlakyStore {
  mode: Mode = 'up';
  probes = 0;
  private readonly hanging: Array<() => void> = [];
  get(): Promise<undefined> {
    this.probes++;
    if (this.mode === 'down') return Promise.reject(new Error('etcdserver: request timed out'));
    if (this.mode === 'hang') return new Promise((resolve) => this.hanging.push(() => resolve(undefined)));
    return Promise.resolve(undefined);
  }
  release(): void {
    for (const answer of this.hanging.splice(0)) answer();
  }
}

function monitor(store: FlakyStore): StoreHealth {
  return new StoreHealth({ store, logger: silentLogger(), intervalMs: 5, timeoutMs: 50 });
}

describe('StoreHealth', () => {
  it('reports the store down when a probe fails, and up again once one succeeds', async () => {
    const store = new FlakyStore();
    const health = monitor(store);
    health.start();
    try {
      await waitFor('a first probe', () => store.probes > 0);
      assert.equal(health.healthy, true);
      store.mode = 'down';
      await waitFor('the store to be reported down', () => !health.healthy);
      store.mode = 'up';
      await waitFor('the store to be reported up', () => health.healthy);
    } finally {
      health.stop();
    }
  });

  it('a probe that does not answer in time counts as down (no quorum: etcd just waits)', async () => {
    const store = new FlakyStore();
    const health = monitor(store);
    health.start();
    try {
      store.mode = 'hang';
      await waitFor('the store to be reported down', () => !health.healthy);
      store.mode = 'up';
      store.release();
      await waitFor('the store to be reported up', () => health.healthy);
    } finally {
      health.stop();
      store.release();
    }
  });
});
