import http from 'node:http';
import https from 'node:https';
import type { Check as CheckRecord, HealthStatus } from '../../catalog/model';
import { type Check, type CheckResult, MAX_CHECK_OUTPUT, deadline, errorText, timeoutOf } from './check';

export interface HttpCheckOptions {
  /** Bytes of the body shown in Output (registry.checkOutputExcerpt); 0 = none, not even read. */
  outputExcerpt: number;
}

/**
 * Consul's HTTP check: `Method` (GET by default) with the check's headers, no body, no
 * redirects followed; 2xx is passing, 429 Too Many Requests is warning, any other status, a
 * timeout or a connection error is critical. Output is the status line (`HTTP GET <url>: 200
 * OK`), and only when configured a short excerpt of the body in printable ASCII: Output is
 * public to catalog readers, so a check must not be a way to read what it can reach.
 */
export class HttpCheck implements Check {
  constructor(private readonly options: HttpCheckOptions = { outputExcerpt: 0 }) {}

  async run(check: CheckRecord, signal: AbortSignal): Promise<CheckResult> {
    const method = (check.method || 'GET').toUpperCase();
    const url = check.http ?? '';
    const prefix = `HTTP ${method} ${url}`;
    const timeoutMs = timeoutOf(check);
    const limit = deadline(signal, timeoutMs);
    try {
      const { statusCode, statusMessage, body } = await request(url, method, check.header ?? {}, limit.signal, this.options.outputExcerpt);
      const line = `${prefix}: ${statusCode} ${printable(statusMessage)}`;
      return clip({ status: statusFor(statusCode), output: body === '' ? line : `${line} Output: ${printable(body)}` });
    } catch (err) {
      const reason = limit.timedOut() ? `timed out after ${timeoutMs} ms` : errorText(err);
      return clip({ status: 'critical', output: `${prefix}: ${reason}` });
    } finally {
      limit.dispose();
    }
  }
}

export function statusFor(code: number): HealthStatus {
  if (code >= 200 && code < 300) return 'passing';
  if (code === 429) return 'warning';
  return 'critical';
}

interface Reply {
  statusCode: number;
  statusMessage: string;
  body: string;
}

/**
 * One request on a fresh connection (no keep-alive, as Consul: a check must see the target
 * accept connections), reading at most BODY_LIMIT bytes of the body before hanging up.
 */
function request(url: string, method: string, header: Record<string, string[]>, signal: AbortSignal, bodyLimit: number): Promise<Reply> {
  const client = url.startsWith('https:') ? https : http;
  const headers: http.OutgoingHttpHeaders = { 'user-agent': 'Switchboard Health Check', accept: 'text/plain, text/*, */*' };
  for (const [name, values] of Object.entries(header)) headers[name.toLowerCase()] = values.length === 1 ? values[0] : values;
  return new Promise<Reply>((resolve, reject) => {
    const req = client.request(url, { method, headers, agent: false, signal }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const finish = () => {
        res.destroy();
        resolve({ statusCode: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', body: Buffer.concat(chunks).subarray(0, bodyLimit).toString('latin1') });
      };
      if (bodyLimit === 0) {
        finish();
        return;
      }
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= bodyLimit) finish();
      });
      res.on('end', finish);
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Printable ASCII only: anything else becomes "?" (no control characters reach logs or the UI). */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

function clip(result: CheckResult): CheckResult {
  return result.output.length <= MAX_CHECK_OUTPUT ? result : { ...result, output: result.output.slice(0, MAX_CHECK_OUTPUT) };
}
