import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AccessLog } from '../../src/proxy/access-log/access-log';
import { type AccessEntry, type CombinedFields, maxLineBytes, writeCombined, writeJson } from '../../src/proxy/access-log/formats';
import { LineBuffer } from '../../src/proxy/access-log/line-buffer';

const base: AccessEntry = {
  time: '2026-11-27T18:00:00.000Z',
  id: 'req-1',
  client: '127.0.0.1',
  method: 'GET',
  host: 'web.svc',
  path: '/x',
  status: 200,
  bytesIn: 78,
  bytesOut: 241,
  durationMs: 1732,
  service: 'web',
  upstream: 'web-1',
  attempts: 1,
  error: '',
};

const plainCombined: CombinedFields = { httpVersion: '1.1', referer: '', userAgent: 'curl/8' };

/** The line as the log would write it (a buffer sized for it, as the log sizes one). */
function jsonLine(entry: AccessEntry): string {
  const out = new LineBuffer(maxLineBytes(entry, undefined));
  writeJson(out, entry);
  return out.take().toString('utf8');
}

function combinedLine(entry: AccessEntry, fields: CombinedFields = plainCombined): string {
  const out = new LineBuffer(maxLineBytes(entry, fields));
  writeCombined(out, entry, fields);
  return out.take().toString('utf8');
}

/** What JSON.stringify makes of the entry as it appears in the log (durations in ms). */
function stringified(entry: AccessEntry): string {
  return `${JSON.stringify({ ...entry, durationMs: entry.durationMs / 1000 })}\n`;
}

const HOSTILE = ['"quoted"\n{"forged":1}', '\\u0000\x00\x1f\x7f', 'ünïcödé ✓ \ud800 \udfff 😀', '', '</script>', 'x'.repeat(5000) + '\u2028'];

describe('access log JSON line', () => {
  it('is exactly what JSON.stringify makes of the entry, for hostile strings too', () => {
    for (const text of HOSTILE) {
      for (const field of ['id', 'method', 'host', 'path', 'service', 'upstream', 'error', 'client'] as const) {
        const entry = { ...base, [field]: text };
        assert.equal(jsonLine(entry), stringified(entry), `${field} = ${JSON.stringify(text).slice(0, 60)}`);
      }
    }
    assert.equal(jsonLine(base), stringified(base));
    assert.equal(jsonLine(base).split('\n').length, 2, 'one line');
  });

  it('writes numbers as JS prints them: durations with up to three decimals, counters as integers', () => {
    const durations = [0, 1, 5, 50, 500, 999, 1000, 1001, 1500, 1732, 10_000, 123_456_789, 2 ** 40 + 7];
    for (let i = 0; i < 200; i++) durations.push(Math.round(Math.random() * 10 ** (1 + (i % 9))));
    for (const durationMs of durations) {
      const entry = { ...base, durationMs, bytesIn: durationMs * 7, bytesOut: Number.MAX_SAFE_INTEGER - durationMs, attempts: durationMs % 4 };
      assert.equal(jsonLine(entry), stringified(entry), `durationMs ${durationMs}`);
    }
  });

  it('never writes past what maxLineBytes promised, whatever the strings hold', () => {
    for (const text of HOSTILE) {
      const entry = { ...base, id: text, path: text, host: text, upstream: text };
      const fields = { httpVersion: text, referer: text, userAgent: text };
      assert.ok(Buffer.byteLength(jsonLine(entry)) <= maxLineBytes(entry, undefined));
      assert.ok(Buffer.byteLength(combinedLine(entry, fields)) <= maxLineBytes(entry, fields));
    }
  });
});

describe('access log combined line', () => {
  it('is the combined format, then our fields; empty fields are "-"', () => {
    assert.equal(
      combinedLine(base),
      '127.0.0.1 - - [27/Nov/2026:18:00:00 +0000] "GET /x HTTP/1.1" 200 241 "-" "curl/8" id="req-1" host="web.svc" service="web" upstream="web-1" attempts=1 duration_ms=1.732 bytes_in=78 error="-"\n',
    );
  });

  it('escapes quotes, backslashes, controls and non-ASCII as \\xHH: no forged fields or lines', () => {
    const line = combinedLine({ ...base, path: '/a?q="x"\\', error: 'e\n' }, { httpVersion: '1.1', referer: 'http://r/é', userAgent: 'evil" 200 9999 "forged\r\nx' });
    assert.equal(line.split('\n').length, 2);
    assert.ok(line.includes('"GET /a?q=\\x22x\\x22\\x5c HTTP/1.1"'), line);
    assert.ok(line.includes('"http://r/\\xe9"'), line);
    assert.ok(line.includes('"evil\\x22 200 9999 \\x22forged\\x0d\\x0ax"'), line);
    assert.ok(line.endsWith('error="e\\x0a"\n'), line);
  });
});

describe('LineBuffer', () => {
  it('hands its bytes over and starts a new buffer, of a size that fits the next line', () => {
    const out = new LineBuffer(16);
    out.int(1234);
    const first = out.take(100);
    assert.equal(first.toString(), '1234');
    assert.ok(out.fits(100) && !out.fits(101));
    out.int(5);
    assert.equal(first.toString(), '1234', 'the handed-over bytes are not reused');
    assert.equal(out.take().toString(), '5');
    assert.ok(out.fits(16) && !out.fits(17), 'back to the usual size');
  });
});

describe('AccessLog', () => {
  it('writes a line larger than its 64 KiB batch buffer whole, between the lines around it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-access-unit-'));
    try {
      const file = path.join(dir, 'access.log');
      const log = new AccessLog({ enabled: true, format: 'json', path: file, sample: 1 });
      const socket = { bytesRead: 0, bytesWritten: 0, remoteAddress: '127.0.0.1' };
      const answer = (url: string): void => {
        socket.bytesRead += 100;
        const req = { requestId: 'r', method: 'GET', url, rawHeaders: ['Host', 'web.svc'], socket, httpVersion: '1.1' };
        log.answered({ req: req as never, res: {} as never, startedAt: 0, status: 200, service: { name: 'web' }, upstream: 'web-1', tries: 1, error: undefined });
      };
      // 30,000 controls escape to \u00XX: 180,000 bytes on one line.
      const huge = `/${'\x01'.repeat(30_000)}`;
      for (let i = 0; i < 200; i++) answer(`/before-${i}`);
      answer(huge);
      answer('/after');
      await log.close();
      const lines = readFileSync(file, 'utf8').split('\n');
      assert.equal(lines.pop(), '', 'ends with a newline');
      assert.equal(lines.length, 202);
      const parsed = lines.map((l) => JSON.parse(l) as { path: string; bytesIn: number });
      assert.deepEqual(parsed.slice(0, 200).map((l) => l.path), Array.from({ length: 200 }, (_, i) => `/before-${i}`));
      assert.equal(parsed[200].path, huge);
      assert.equal(parsed[201].path, '/after');
      assert.ok(parsed.every((l) => l.bytesIn === 100), 'bytes since the previous request on the connection');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
