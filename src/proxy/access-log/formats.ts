/**
 * The access log's two line formats, written into a LineBuffer. Every byte of a line that came
 * from a client or an upstream is escaped: a header cannot forge a second line or a field.
 */
import { ascii, type LineBuffer, MAX_BYTES_PER_UNIT } from './line-buffer';

/** One line of the JSON format: the fields, in this order. */
export interface AccessEntry {
  time: string;
  id: string;
  client: string;
  method: string;
  host: string;
  path: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  /** In thousandths of a millisecond, written as milliseconds with three decimals at most. */
  durationMs: number;
  service: string;
  upstream: string;
  attempts: number;
  error: string;
}

/** What the combined format adds to the entry (read off the request only for that format). */
export interface CombinedFields {
  httpVersion: string;
  referer: string;
  userAgent: string;
}

export type LineFormat = 'json' | 'combined';

/** Bytes a line can take at most, whatever its strings hold. */
export function maxLineBytes(e: AccessEntry, combined: CombinedFields | undefined): number {
  let units = e.time.length + e.id.length + e.client.length + e.method.length + e.host.length + e.path.length;
  units += e.service.length + e.upstream.length + e.error.length;
  if (combined !== undefined) units += e.method.length + e.path.length + combined.httpVersion.length + combined.referer.length + combined.userAgent.length;
  // Numbers and the fixed text of either format stay well under 512 bytes.
  return 512 + units * MAX_BYTES_PER_UNIT;
}

// ---- JSON -----------------------------------------------------------------------------------

const J_TIME = ascii('{"time":"');
const J_ID = ascii('","id":');
const J_CLIENT = ascii(',"client":');
const J_METHOD = ascii(',"method":');
const J_HOST = ascii(',"host":');
const J_PATH = ascii(',"path":');
const J_STATUS = ascii(',"status":');
const J_BYTES_IN = ascii(',"bytesIn":');
const J_BYTES_OUT = ascii(',"bytesOut":');
const J_DURATION = ascii(',"durationMs":');
const J_SERVICE = ascii(',"service":');
const J_UPSTREAM = ascii(',"upstream":');
const J_ATTEMPTS = ascii(',"attempts":');
const J_ERROR = ascii(',"error":');
const J_END = ascii('}\n');

/** The JSON line: byte for byte what `JSON.stringify(entry)` makes (a test checks), plus `\n`. */
export function writeJson(out: LineBuffer, e: AccessEntry): void {
  out.raw(J_TIME);
  out.plain(e.time);
  out.raw(J_ID);
  jsonString(out, e.id);
  out.raw(J_CLIENT);
  jsonString(out, e.client);
  out.raw(J_METHOD);
  jsonString(out, e.method);
  out.raw(J_HOST);
  jsonString(out, e.host);
  out.raw(J_PATH);
  jsonString(out, e.path);
  out.raw(J_STATUS);
  out.int(e.status);
  out.raw(J_BYTES_IN);
  out.int(e.bytesIn);
  out.raw(J_BYTES_OUT);
  out.int(e.bytesOut);
  out.raw(J_DURATION);
  out.thousandths(e.durationMs);
  out.raw(J_SERVICE);
  jsonString(out, e.service);
  out.raw(J_UPSTREAM);
  jsonString(out, e.upstream);
  out.raw(J_ATTEMPTS);
  out.int(e.attempts);
  out.raw(J_ERROR);
  jsonString(out, e.error);
  out.raw(J_END);
}

const QUOTE = 0x22;

function jsonString(out: LineBuffer, text: string): void {
  // JSON.stringify escapes controls, quotes, backslashes and lone surrogates; the rest is UTF-8.
  if (!out.plain(text, QUOTE)) out.utf8(JSON.stringify(text));
}

// ---- combined ---------------------------------------------------------------------------------

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const C_TIME = ascii(' - - [');
const C_REQUEST = ascii('] "');
const C_HTTP = ascii(' HTTP/');
const C_STATUS = ascii('" ');
const C_ID = ascii(' id=');
const C_HOST = ascii(' host=');
const C_SERVICE = ascii(' service=');
const C_UPSTREAM = ascii(' upstream=');
const C_ATTEMPTS = ascii(' attempts=');
const C_DURATION = ascii(' duration_ms=');
const C_BYTES_IN = ascii(' bytes_in=');
const C_ERROR = ascii(' error=');
const DASH = ascii('"-"');

/**
 * `client - - [27/Nov/2026:15:04:00 +0000] "GET /x HTTP/1.1" 200 123 "referer" "agent"`, then
 * our fields as key="value". Quotes, backslashes and anything not printable ASCII are \xHH.
 */
export function writeCombined(out: LineBuffer, e: AccessEntry, c: CombinedFields): void {
  escaped(out, e.client);
  out.raw(C_TIME);
  out.plain(clfTime(e.time));
  out.raw(C_REQUEST);
  escaped(out, e.method);
  out.char(0x20);
  escaped(out, e.path);
  out.raw(C_HTTP);
  escaped(out, c.httpVersion);
  out.raw(C_STATUS);
  out.int(e.status);
  out.char(0x20);
  out.int(e.bytesOut);
  out.char(0x20);
  quoted(out, c.referer);
  out.char(0x20);
  quoted(out, c.userAgent);
  out.raw(C_ID);
  quoted(out, e.id);
  out.raw(C_HOST);
  quoted(out, e.host);
  out.raw(C_SERVICE);
  quoted(out, e.service);
  out.raw(C_UPSTREAM);
  quoted(out, e.upstream);
  out.raw(C_ATTEMPTS);
  out.int(e.attempts);
  out.raw(C_DURATION);
  out.thousandths(e.durationMs);
  out.raw(C_BYTES_IN);
  out.int(e.bytesIn);
  out.raw(C_ERROR);
  quoted(out, e.error);
  out.char(0x0a);
}

/** A double-quoted field, `"-"` when empty. */
function quoted(out: LineBuffer, text: string): void {
  if (text === '') return out.raw(DASH);
  if (out.plain(text, QUOTE)) return;
  out.char(QUOTE);
  escaped(out, text);
  out.char(QUOTE);
}

function escaped(out: LineBuffer, text: string): void {
  if (out.plain(text)) return;
  let safe = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    safe += c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c ? `\\x${c.toString(16).padStart(2, '0')}` : text[i];
  }
  out.utf8(safe);
}

/** `27/Nov/2026:15:04:00 +0000` from an ISO time, made once per second. */
let clfSecond = '';
let clfText = '';
function clfTime(iso: string): string {
  const second = iso.slice(0, 19);
  if (second !== clfSecond) {
    const d = new Date(iso);
    const pad = (n: number): string => String(n).padStart(2, '0');
    clfSecond = second;
    clfText = `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
  }
  return clfText;
}
