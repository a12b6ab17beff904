/**
 * `npm run cluster` is how the README tells newcomers to try distributed mode: its --smoke
 * run starts the whole local cluster (3 etcd members, Redis, 2 registries, 2 proxies, demo
 * services), sends a request through every proxy to every demo service, tears everything
 * down and exits 0. With --tls the same over HTTPS: registries, proxies, the demo services'
 * registrations and heartbeats, and the requests through the proxies.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/role-process';

const SCRIPT = path.join(REPO_ROOT, 'dist', 'scripts', 'cluster.js');
const TIMEOUT_MS = 90_000;

/** Runs the script to its end: exit code and everything it wrote. */
async function runScript(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [SCRIPT, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
  // SIGTERM lets the script tear its cluster down; it has its own 60 s bound anyway.
  const timer = setTimeout(() => child.kill('SIGTERM'), TIMEOUT_MS - 10_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, output };
}

describe('the local cluster script', { timeout: TIMEOUT_MS }, () => {
  it('--smoke starts everything, routes through every proxy, cleans up and exits 0', { timeout: TIMEOUT_MS }, async () => {
    const { code, output } = await runScript(['--smoke']);
    assert.equal(code, 0, output);
    assert.match(output, /smoke check passed: every proxy routes every demo service \(leader [\d.:]+\)/);
  });

  it('--smoke --tls does the same with every listener on HTTPS', { timeout: TIMEOUT_MS }, async () => {
    const { code, output } = await runScript(['--smoke', '--tls']);
    assert.equal(code, 0, output);
    assert.match(output, /smoke check passed: every proxy routes every demo service \(leader [\d.:]+, every listener on HTTPS\)/);
  });
});
