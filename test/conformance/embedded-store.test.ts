import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedStore } from '../../src/registry/store/embedded-store';
import { runStoreConformance } from './store-suite';

// A small compactEvery so compactions happen in the middle of the suite's writes.
runStoreConformance('embedded', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'switchboard-conformance-'));
  const store = new EmbeddedStore({ dataDir, compactEvery: 7 });
  await store.open();
  return {
    store,
    cleanup: async () => {
      try {
        await store.close();
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
});
