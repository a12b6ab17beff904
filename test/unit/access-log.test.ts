import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonLine, type AccessEntry } from '../../src/proxy/access-log';

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
  durationMs: 1.732,
  service: 'web',
  upstream: 'web-1',
  attempts: 1,
  error: '',
};

describe('access log JSON line', () => {
  it('is exactly what JSON.stringify makes of the entry, for hostile strings too', () => {
    const hostile = ['"quoted"\n{"forged":1}', '\\u0000\x00\x1f\x7f', 'ünïcödé ✓ \ud800', '', '</script>'];
    for (const text of hostile) {
      for (const field of ['id', 'method', 'host', 'path', 'service', 'upstream', 'error', 'client'] as const) {
        const entry = { ...base, [field]: text };
        assert.equal(jsonLine(entry), `${JSON.stringify(entry)}\n`, `${field} = ${JSON.stringify(text)}`);
      }
    }
    assert.equal(jsonLine(base), `${JSON.stringify(base)}\n`);
    assert.equal(jsonLine(base).split('\n').length, 2, 'one line');
  });
});
