import { SwitchboardError } from '../../errors';

/**
 * The request target, normalised once: the proxy routes on exactly the string it forwards,
 * so `/api/users/../../admin` cannot be routed as `users` and read as `/admin` by the
 * backend. Envoy's edge settings (normalize_path, merge_slashes, escaped slashes rejected)
 * plus what Tomcat-style backends read as dot-segments:
 *
 *  - only origin-form (`/path?query`): absolute-form, authority-form and `*` are refused —
 *    this is a reverse proxy, not a forward proxy;
 *  - percent-escapes of unreserved characters are decoded (RFC 3986 §6.2.2.2; so `%2e` is a
 *    dot before dot-segments are removed), other escapes keep their bytes, in upper case;
 *  - `%2F`, `%5C`, a backslash, NUL or any control character, a raw non-ASCII byte, a bad
 *    escape, a fragment, or a segment starting `..;` or `.;` → 400;
 *  - `//` merged, dot-segments removed (RFC 3986 §5.2.4, never above the root).
 *
 * A path with none of `%`, `.` after a `/`, or `//` is returned as it is, without copying.
 */
export function normalizeTarget(url: string): string | SwitchboardError {
  if (url.charCodeAt(0) !== SLASH) {
    return refuse(url === '*' ? 'the asterisk-form target "*" is not served' : 'only origin-form targets ("/path") are accepted; this is not a forward proxy');
  }
  const length = url.length;
  let pathEnd = length;
  let rewrite = false;
  for (let i = 0; i < length; i++) {
    const c = url.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === BACKSLASH || c === HASH) return refuse(badCharacter(c, i < pathEnd));
    if (i >= pathEnd) continue;
    if (c === QUESTION) pathEnd = i;
    else if (c === PERCENT) rewrite = true;
    else if (c === SLASH) {
      const next = url.charCodeAt(i + 1);
      if (next === SLASH || next === DOT) rewrite = true;
    }
  }
  if (!rewrite) return url;
  const path = decodeUnreserved(url.slice(0, pathEnd));
  if (typeof path !== 'string') return path;
  const normalized = removeDotSegments(path);
  if (typeof normalized !== 'string') return normalized;
  return pathEnd === length ? normalized : normalized + url.slice(pathEnd);
}

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const QUESTION = 0x3f;
const PERCENT = 0x25;
const HASH = 0x23;

function refuse(reason: string): SwitchboardError {
  return new SwitchboardError('bad_request', `request target: ${reason}`, { field: 'target' });
}

function badCharacter(c: number, inPath: boolean): string {
  if (c === HASH) return 'a fragment ("#") is not allowed';
  if (c === BACKSLASH) return 'a backslash is not allowed in the path';
  const where = inPath ? 'path' : 'query';
  return `byte 0x${c.toString(16).padStart(2, '0')} is not allowed in the ${where} (percent-encode it)`;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === DOT || b === 0x5f || b === 0x7e;
}

function decodeUnreserved(path: string): string | SwitchboardError {
  if (path.indexOf('%') < 0) return path;
  let out = '';
  let from = 0;
  for (let i = path.indexOf('%'); i >= 0; i = path.indexOf('%', from)) {
    const hi = path.charCodeAt(i + 1);
    const lo = path.charCodeAt(i + 2);
    if (!isHex(hi) || !isHex(lo)) return refuse(`"${path.slice(i, i + 3)}" is not a valid percent-escape`);
    const byte = parseInt(path.slice(i + 1, i + 3), 16);
    if (byte === SLASH || byte === BACKSLASH) return refuse('an encoded slash or backslash (%2F, %5C) is not allowed in the path');
    if (byte < 0x20 || byte === 0x7f) return refuse(`an encoded control character (%${byte.toString(16).padStart(2, '0').toUpperCase()}) is not allowed in the path`);
    out += path.slice(from, i) + (isUnreserved(byte) ? String.fromCharCode(byte) : path.slice(i, i + 3).toUpperCase());
    from = i + 3;
  }
  return out + path.slice(from);
}

/** Merges empty segments and resolves `.` and `..`; a trailing slash (or dot-segment) is kept as `/`. */
function removeDotSegments(path: string): string | SwitchboardError {
  const segments = path.split('/');
  const out: string[] = [];
  // segments[0] is the empty string before the leading slash.
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i];
    const last = i === segments.length - 1;
    if (segment.startsWith('..;') || segment.startsWith('.;')) {
      return refuse(`segment "${segment}" is read as a dot-segment by some backends`);
    }
    if (segment === '' || segment === '.') {
      if (last) out.push('');
      continue;
    }
    if (segment === '..') {
      out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(segment);
  }
  return '/' + out.join('/');
}
