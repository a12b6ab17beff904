import type { Readable } from 'node:stream';

/**
 * What the proxy does with a request body, decided from the head before anything is read:
 *
 * - NONE: no body; the request can be sent again as often as needed.
 * - BUFFERED: a Content-Length within the service's `bufferBodyUpTo`. Read in full first (a
 *   few packets at most), then sent from memory, so a retry can send it again.
 * - STREAMED: larger, or chunked with no length. Streamed to the upstream as it arrives, and
 *   only once the transport writes the request: a refused connection leaves the body unread
 *   and the request can still go elsewhere. Once read, it can never be replayed.
 */
export const BODY_NONE = 0;
export const BODY_BUFFERED = 1;
export const BODY_STREAMED = 2;
export type BodyMode = typeof BODY_NONE | typeof BODY_BUFFERED | typeof BODY_STREAMED;

/** `bodyLength`: Content-Length, -1 for chunked, 0 for none (request-head.ts). */
export function bodyMode(bodyLength: number, bufferUpTo: number): BodyMode {
  if (bodyLength < 0) return BODY_STREAMED;
  if (bodyLength === 0) return BODY_NONE;
  return bodyLength <= bufferUpTo ? BODY_BUFFERED : BODY_STREAMED;
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

/**
 * The client's body, handed to the transport as an async iterable: nothing is read until the
 * transport starts writing, and a transport that gives up does not destroy the client's
 * request (so the client can still be told 502). `started` says whether it can be replayed.
 */
export class StreamedBody implements AsyncIterable<Buffer> {
  started = false;

  constructor(private readonly source: Readable) {}

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    this.started = true;
    return this.source.iterator({ destroyOnReturn: false });
  }
}
