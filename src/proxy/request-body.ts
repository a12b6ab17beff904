import type { IncomingHttpHeaders } from 'node:http';

/**
 * What the proxy does with a request body, decided from the headers before anything is read:
 *
 * - NONE: no body; the request can be sent again as often as needed.
 * - BUFFERED: a Content-Length within the service's `bufferBodyUpTo`. Read in full first (a
 *   few packets at most), then sent from memory, so a retry can send it again.
 * - STREAMED: larger, or chunked with no length. Piped to the upstream as it arrives, and only
 *   once the upstream connection is established: a refused connection leaves the body unread
 *   and the request can still go elsewhere. Once bytes have flowed, it can never be replayed.
 */
export const BODY_NONE = 0;
export const BODY_BUFFERED = 1;
export const BODY_STREAMED = 2;
export type BodyMode = typeof BODY_NONE | typeof BODY_BUFFERED | typeof BODY_STREAMED;

export function bodyMode(headers: IncomingHttpHeaders, bufferUpTo: number): BodyMode {
  const length = headers['content-length'];
  if (headers['transfer-encoding'] !== undefined) return BODY_STREAMED;
  if (length === undefined || length === '0') return BODY_NONE;
  // node has validated Content-Length already: digits only.
  return Number(length) <= bufferUpTo ? BODY_BUFFERED : BODY_STREAMED;
}

/** Chunks of a body being read, joined once at the end (usually there is just one). */
export class BodyBuffer {
  private chunks: Buffer[] = [];

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  join(): Buffer {
    const body = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.chunks = [];
    return body;
  }
}
