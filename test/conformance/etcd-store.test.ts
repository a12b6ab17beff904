import { randomUUID } from 'node:crypto';
import { after } from 'node:test';
import { EtcdStore } from '../../src/registry/store/etcd-store';
import { startEtcd, type EtcdHandle } from '../helpers/etcd';
import { runStoreConformance } from './store-suite';

// One single-member etcd for the whole file; each run gets its own key prefix.
let etcd: EtcdHandle | undefined;
after(async () => {
  await etcd?.stop();
});

runStoreConformance('etcd', async () => {
  etcd ??= await startEtcd();
  const store = new EtcdStore({ endpoints: etcd.endpoints, prefix: `switchboard-test/${randomUUID()}/` });
  await store.open();
  return { store, cleanup: () => store.close() };
});
