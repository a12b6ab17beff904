/**
 * ScriptCheck against real programs: exit status → health, the Timeout kills the whole
 * process group, output is cut at 4 KiB, arguments reach the program untouched by any shell,
 * the environment is PATH alone, and at most `maxConcurrent` scripts run at once.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Check as CheckRecord } from '../../src/catalog/model';
import { ScriptCheck } from '../../src/registry/checks/script-check';
import { waitFor } from '../helpers/child';

function check(args: string[], timeoutMs = 5_000): CheckRecord {
  return { checkId: 'c', name: 'c', type: 'script', status: 'critical', output: '', statusSince: 0, args, intervalMs: 10_000, timeoutMs };
}

describe('script checks run', () => {
  let dir = '';
  const script = (name: string, body: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
    return file;
  };
  const run = (args: string[], timeoutMs?: number, maxConcurrent = 4) => new ScriptCheck({ maxConcurrent }).run(check(args, timeoutMs), new AbortController().signal);

  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'sb-script-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const statuses: Array<[string, string, string]> = [
    ['exit 0: passing', 'echo all good; exit 0', 'passing'],
    ['exit 1: warning', 'echo degraded >&2; exit 1', 'warning'],
    ['exit 2: critical', 'exit 2', 'critical'],
    ['killed by a signal: critical', 'kill -9 $$', 'critical'],
  ];
  for (const [what, body, status] of statuses) {
    it(what, async () => {
      const result = await run([script(`s-${status}-${body.length}.sh`, body)]);
      assert.equal(result.status, status);
    });
  }

  it('stdout and stderr are the output', async () => {
    const result = await run([script('both.sh', 'echo out; echo err >&2')]);
    assert.match(result.output, /out/);
    assert.match(result.output, /err/);
  });

  it('a program that cannot be run: critical, saying why', async () => {
    const result = await run([path.join(dir, 'missing')]);
    assert.equal(result.status, 'critical');
    assert.match(result.output, /ENOENT/);
  });

  it('output is cut at 4 KiB', async () => {
    const result = await run([script('loud.sh', 'head -c 100000 /dev/zero | tr "\\0" x')]);
    assert.equal(result.status, 'passing');
    assert.equal(result.output.length, 4096);
  });

  it('the Timeout kills the script and what it started (its process group)', async () => {
    const marker = path.join(dir, 'grandchild-pid');
    const result = await run([script('slow.sh', `sleep 30 & echo $! > ${marker}; wait`)], 300);
    assert.equal(result.status, 'critical');
    assert.match(result.output, /timed out after 300 ms/);
    const pid = Number((await import('node:fs')).readFileSync(marker, 'utf8'));
    await waitFor('the backgrounded sleep to be gone', () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 5_000);
  });

  it('arguments are passed as they are: no shell interprets them', async () => {
    const pwned = path.join(dir, 'pwned');
    const result = await run(['/bin/echo', `a; touch ${pwned}`, '$(id)', '`id`', '*']);
    assert.equal(result.output.trim(), `a; touch ${pwned} $(id) \`id\` *`);
    assert.equal(existsSync(pwned), false);
  });

  it('the environment is PATH alone', async () => {
    process.env.SWITCHBOARD_SECRET_FOR_TEST = 'leak';
    const result = await run(['/usr/bin/env']);
    delete process.env.SWITCHBOARD_SECRET_FOR_TEST;
    assert.deepEqual(result.output.trim().split('\n').map((l) => l.split('=')[0]), ['PATH']);
  });

  it('at most maxConcurrent scripts run at once', async () => {
    const counter = path.join(dir, 'running');
    const peak = path.join(dir, 'peak');
    writeFileSync(counter, '0');
    writeFileSync(peak, '0');
    // flock serialises the read-modify-write of the shared counters.
    const body = `exec 9>${dir}/lock
flock 9; n=$(( $(cat ${counter}) + 1 )); echo $n > ${counter}; [ $n -gt $(cat ${peak}) ] && echo $n > ${peak}; flock -u 9
sleep 0.2
flock 9; echo $(( $(cat ${counter}) - 1 )) > ${counter}; flock -u 9`;
    const busy = script('busy.sh', body);
    const checks = new ScriptCheck({ maxConcurrent: 2 });
    const results = await Promise.all(Array.from({ length: 6 }, () => checks.run(check([busy]), new AbortController().signal)));
    assert.ok(results.every((r) => r.status === 'passing'), JSON.stringify(results));
    assert.equal((await import('node:fs')).readFileSync(peak, 'utf8').trim(), '2');
  });
});
