import { MemoryStore } from '../helpers/memory-store';
import { runStoreConformance } from './store-suite';

runStoreConformance('memory', async () => {
  const store = new MemoryStore();
  await store.open();
  return { store, cleanup: () => store.close() };
});
