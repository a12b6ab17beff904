/**
 * A bad service policy stops `switchboard all` before anything starts: exit 2, one line that
 * names the file, the field and the reason.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { makeTempDir } from '../helpers/child';
import { runSwitchboard } from '../helpers/switchboard-process';

const dir = makeTempDir('policy-cli');
after(() => rmSync(dir, { recursive: true, force: true }));

test('an unknown balancer exits 2 naming proxy.services.<name>.balancer', async () => {
  const file = path.join(dir, 'bad-balancer.yaml');
  writeFileSync(file, 'proxy:\n  services:\n    users:\n      balancer: fastest\n');
  const res = await runSwitchboard(['all', '--config', file, '--proxy-listen=127.0.0.1:0', '--api-listen=127.0.0.1:0', '--admin-listen=127.0.0.1:0', '--dns-listen=127.0.0.1:0', `--data-dir=${dir}`]);
  assert.equal(res.code, 2);
  const lines = res.stderr.trim().split('\n');
  assert.equal(lines.length, 1, res.stderr);
  assert.match(lines[0], /invalid configuration: config file .*bad-balancer\.yaml: proxy\.services\.users\.balancer: must be one of weighted-round-robin, least-request, ring-hash, random, got "fastest"/);
});
