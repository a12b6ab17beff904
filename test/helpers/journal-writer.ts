/**
 * Child process for test/integration/embedded-kill.test.ts:
 *
 *   node dist/test/helpers/journal-writer.js <dataDir> <keyPrefix> <compactEvery>
 *
 * Opens an EmbeddedStore and writes one new key per txn from several concurrent writers (so
 * group commit batches them), printing `ack <rev> <key>` once each txn has resolved. It runs
 * until the parent kills it. Writes to a pipe are synchronous on Linux, so a printed ack has
 * left the process before the next write starts.
 */
import { EmbeddedStore } from '../../src/registry/store/embedded-store';

const WRITERS = 4;
const MAX_TXNS = 100_000;

async function main(): Promise<void> {
  const [dataDir, keyPrefix, compactEvery] = process.argv.slice(2);
  // `node --test dist/test/` also runs this file, without arguments: do nothing then.
  if (!dataDir || !keyPrefix) return;
  const store = new EmbeddedStore({ dataDir, compactEvery: Number(compactEvery ?? 50) });
  await store.open();
  process.stdout.write('ready\n');
  let next = 0;
  const writer = async (): Promise<void> => {
    while (next < MAX_TXNS) {
      const key = `${keyPrefix}${next++}`;
      const { rev } = await store.txn([{ key, modRev: 0 }], [{ kind: 'put', key, value: key }]);
      process.stdout.write(`ack ${rev} ${key}\n`);
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
  await store.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`journal-writer: ${String(err)}\n`);
  process.exit(1);
});
