/**
 * Load generators behind one interface: wrk (a separate C process, preferred) or autocannon
 * (in-process Node, the fallback when wrk is missing). A run is bounded either by a request
 * count or by a duration, never open-ended, and only ever targets 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { monotonicMs } from './clock';

export interface LoadSpec {
  /** Full URL on 127.0.0.1, e.g. http://127.0.0.1:8080/small */
  url: string;
  /** Host header: how the proxies route. */
  host: string;
  connections: number;
  /** Exactly one of `requests` (fixed count) and `durationMs`. */
  requests?: number;
  durationMs?: number;
  method?: 'GET' | 'POST';
  /** For POST: a body of this many bytes. */
  bodyBytes?: number;
}

/** What the scenarios send: a 64-byte GET, a 1 MiB GET, a 1 MiB POST (bench/backend-server.ts). */
export const REQUEST_KINDS = ['small', 'download', 'upload'] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

export function benchRequest(kind: RequestKind, baseUrl: string): Pick<LoadSpec, 'url' | 'method' | 'bodyBytes'> {
  if (kind === 'download') return { url: `${baseUrl}/big` };
  if (kind === 'upload') return { url: `${baseUrl}/upload`, method: 'POST', bodyBytes: 1024 * 1024 };
  return { url: `${baseUrl}/small` };
}

export interface LoadResult {
  requests: number;
  durationS: number;
  rps: number;
  /** Response bytes per second (headers included for wrk). */
  bytesPerS: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** Socket errors + timeouts + non-2xx responses. Must be 0 in a sane run. */
  errors: number;
}

export interface LoadGenerator {
  readonly name: 'wrk' | 'autocannon';
  run(spec: LoadSpec): Promise<LoadResult>;
}

/** Upper bound on any single run, whatever the spec says. */
const MAX_RUN_MS = 120_000;

function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]') {
    throw new Error(`refusing to send load to ${host}: the harness only targets loopback`);
  }
}

function assertBounded(spec: LoadSpec): void {
  if ((spec.requests === undefined) === (spec.durationMs === undefined)) {
    throw new Error('a load run needs exactly one of requests and durationMs');
  }
}

export class WrkLoad implements LoadGenerator {
  readonly name = 'wrk';

  async run(spec: LoadSpec): Promise<LoadResult> {
    assertLoopback(spec.url);
    assertBounded(spec);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-bench-wrk-'));
    try {
      const script = path.join(dir, 'bench.lua');
      writeFileSync(script, wrkScript(spec));
      const seconds = spec.durationMs !== undefined ? Math.max(1, Math.round(spec.durationMs / 1000)) : MAX_RUN_MS / 1000;
      const args = ['-t1', `-c${spec.connections}`, `-d${seconds}s`, '--timeout', '10s', '-H', `Host: ${spec.host}`, '-s', script, spec.url];
      const result = await runWrk(args, seconds * 1000 + 30_000);
      return parseWrkOutput(result.stdout, result.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/**
 * The Lua side: optional body, optional stop after N responses (wrk only knows durations),
 * and a `done` hook printing one JSON line with the numbers we need.
 */
function wrkScript(spec: LoadSpec): string {
  const lines: string[] = [];
  if (spec.method === 'POST') {
    lines.push('wrk.method = "POST"', `wrk.body = string.rep("x", ${spec.bodyBytes ?? 0})`);
    lines.push('wrk.headers["Content-Type"] = "application/octet-stream"');
  }
  if (spec.requests !== undefined) {
    // Defining response() makes wrk parse every response; only the fixed-count runs pay for it.
    // wrk's main thread sleeps for the whole -d even after its worker stopped; the marker line
    // tells the harness to SIGINT it, which ends the sleep and prints the summary.
    lines.push(
      'local seen = 0',
      'function response()',
      '  seen = seen + 1',
      `  if seen == ${spec.requests} then`,
      `    io.write("${DONE_MARKER}\\n")`,
      '    io.flush()',
      '    wrk.thread:stop()',
      '  end',
      'end',
    );
  }
  lines.push(
    'function done(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'BENCHJSON {"requests":%d,"durationUs":%d,"bytes":%d,"errors":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n\',',
    '    summary.requests, summary.duration, summary.bytes, e.connect + e.read + e.write + e.status + e.timeout,',
    '    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))',
    'end',
  );
  return lines.join('\n') + '\n';
}

const DONE_MARKER = 'BENCHDONE';

/** Runs wrk to completion; interrupts it as soon as a fixed-count script reports it is done. */
function runWrk(args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.includes(DONE_MARKER)) child.kill('SIGINT');
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', () => {
      clearTimeout(timer);
      resolve({ stdout, stderr });
    });
  });
}

function parseWrkOutput(stdout: string, stderr: string): LoadResult {
  const line = stdout.split('\n').find((l) => l.startsWith('BENCHJSON '));
  if (!line) throw new Error(`wrk printed no result:\n${stdout}\n${stderr}`);
  const raw = JSON.parse(line.slice('BENCHJSON '.length)) as Record<string, number>;
  const durationS = raw.durationUs / 1e6;
  return {
    requests: raw.requests,
    durationS,
    rps: raw.requests / durationS,
    bytesPerS: raw.bytes / durationS,
    latencyMs: { p50: raw.p50 / 1000, p90: raw.p90 / 1000, p99: raw.p99 / 1000, max: raw.max / 1000 },
    errors: raw.errors,
  };
}

export class AutocannonLoad implements LoadGenerator {
  readonly name = 'autocannon';

  async run(spec: LoadSpec): Promise<LoadResult> {
    assertLoopback(spec.url);
    assertBounded(spec);
    const options: autocannon.Options = {
      url: spec.url,
      connections: spec.connections,
      headers: { host: spec.host },
      method: spec.method ?? 'GET',
      timeout: 10,
      ...(spec.requests !== undefined ? { amount: spec.requests, duration: MAX_RUN_MS / 1000 } : { duration: Math.max(1, Math.round((spec.durationMs ?? 0) / 1000)) }),
      ...(spec.method === 'POST' ? { body: Buffer.alloc(spec.bodyBytes ?? 0, 'x') } : {}),
    };
    const { result, lastResponseAt, startedAt } = await runAutocannon(options, spec.requests !== undefined);
    const requests = result.requests.total;
    // autocannon notices a finished count only at its next sample tick; time to the last response instead.
    const durationS = spec.requests !== undefined ? Math.max(1e-3, (lastResponseAt - startedAt) / 1000) : result.duration;
    return {
      requests,
      durationS,
      rps: requests / durationS,
      bytesPerS: result.throughput.total / durationS,
      latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
      errors: result.errors + result.timeouts + result.non2xx,
    };
  }
}

function runAutocannon(options: autocannon.Options, timeResponses: boolean): Promise<{ result: autocannon.Result; startedAt: number; lastResponseAt: number }> {
  const startedAt = monotonicMs();
  let lastResponseAt = startedAt;
  return new Promise((resolve, reject) => {
    const tracker = autocannon({ ...options, sampleInt: 50 }, (err, result) => {
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve({ result, startedAt, lastResponseAt });
    });
    if (timeResponses) tracker.on('response', () => (lastResponseAt = monotonicMs()));
  });
}

/** wrk when it is on PATH (or was just installed), else autocannon. */
export function chooseLoadGenerator(wrkAvailable: boolean, forced?: 'wrk' | 'autocannon'): LoadGenerator {
  const pick = forced ?? (wrkAvailable ? 'wrk' : 'autocannon');
  return pick === 'wrk' ? new WrkLoad() : new AutocannonLoad();
}
