/**
 * Log lines written byte by byte into one preallocated buffer, handed on whole when full.
 *
 * Why not strings: a line assembled from template literals is a rope of ~30 pieces, a few
 * hundred bytes of garbage per request, and whoever writes it must flatten it and encode it
 * again. In the benchmark that was most of what the access log cost (profile: the batch join
 * alone ≈ 1.2 µs a request). Here a field is copied once, straight to where it will be written
 * from; almost every value is printable ASCII, copied by a loop V8 compiles to a few
 * instructions a byte, and only the rare value that needs escaping takes the slow path.
 */

/** Bytes one UTF-16 unit can take, escaped, at most (`\u00XX` in JSON; `\xHHHH` in combined). */
export const MAX_BYTES_PER_UNIT = 6;

export class LineBuffer {
  private bytes: Buffer;
  /** Bytes written so far. */
  length = 0;

  constructor(private readonly capacity: number) {
    this.bytes = Buffer.allocUnsafeSlow(capacity);
  }

  /** Room for a line of up to `n` bytes (made by the caller's `flush` first when there is not). */
  fits(n: number): boolean {
    return this.length + n <= this.bytes.length;
  }

  /**
   * What was written, for good: the buffer's memory now belongs to the caller (a destination
   * writes it later), so the next line starts in a new one — of the usual size, or bigger for
   * one line larger than that (`minimum`).
   */
  take(minimum = 0): Buffer {
    const written = this.bytes.subarray(0, this.length);
    this.bytes = Buffer.allocUnsafeSlow(Math.max(this.capacity, minimum));
    this.length = 0;
    return written;
  }

  /** Bytes known in advance (a field's name and punctuation). */
  raw(literal: Uint8Array): void {
    // A loop: TypedArray#set costs more than copying a dozen bytes by hand.
    const bytes = this.bytes;
    let at = this.length;
    for (let i = 0; i < literal.length; i++) bytes[at++] = literal[i];
    this.length = at;
  }

  /** One ASCII character. */
  char(code: number): void {
    this.bytes[this.length++] = code;
  }

  /** A non-negative integer in decimal; anything else (never seen in a log line) as JS prints it. */
  int(n: number): void {
    if (!(n >= 0 && n <= Number.MAX_SAFE_INTEGER && Math.floor(n) === n)) {
      this.length += this.bytes.write(String(n), this.length, 'latin1');
      return;
    }
    let digits = 1;
    for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    let at = this.length + digits;
    this.length = at;
    do {
      this.bytes[--at] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
  }

  /**
   * Thousandths as a decimal with up to three fraction digits, trailing zeros dropped:
   * 1732 → `1.732`, 1500 → `1.5`, 2000 → `2` — what JS prints for Math.round(x * 1000) / 1000.
   */
  thousandths(n: number): void {
    const whole = Math.floor(n / 1000);
    let fraction = n - whole * 1000;
    this.int(whole);
    if (fraction === 0) return;
    this.char(0x2e);
    let digits = 3;
    while (fraction % 10 === 0) {
      fraction /= 10;
      digits--;
    }
    for (let place = 10 ** (digits - 1); place >= 1; place /= 10) this.char(0x30 + (Math.floor(fraction / place) % 10));
  }

  /**
   * `text` copied as it is — between two `around` characters if given — when every unit of it
   * is printable ASCII other than `"` and `\\` (what any escaping leaves alone), and true;
   * otherwise nothing written and false, for the caller to escape it its own way.
   */
  plain(text: string, around = 0): boolean {
    const bytes = this.bytes;
    let at = this.length;
    if (around !== 0) bytes[at++] = around;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
      bytes[at++] = c;
    }
    if (around !== 0) bytes[at++] = around;
    this.length = at;
    return true;
  }

  /** Text as UTF-8 (already escaped by the caller). */
  utf8(text: string): void {
    this.length += this.bytes.write(text, this.length, 'utf8');
  }
}

/** A literal's bytes, made once at load. */
export function ascii(text: string): Uint8Array {
  return Buffer.from(text, 'latin1');
}
