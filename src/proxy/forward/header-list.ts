/**
 * Flat header lists ([name, value, name, value, …], the shape node's `rawHeaders`,
 * `writeHead` and undici's `dispatch` share) and the Connection header's nominations,
 * for both directions of the proxy.
 */

/**
 * Adds to `into` the header names a Connection value nominates as hop-by-hop, in lower case,
 * leaving out connection options (`close`, `keep-alive`, `upgrade`) and the names in `keep`.
 */
export function nominatedHeaders(value: string, keep: ReadonlySet<string>, into: string[] | undefined): string[] | undefined {
  // Token by token without split(): nearly every Connection value is one option
  // ("keep-alive", "close"), and this runs for most requests and responses.
  let start = 0;
  while (start <= value.length) {
    let end = value.indexOf(',', start);
    if (end < 0) end = value.length;
    const name = value.slice(start, end).trim().toLowerCase();
    start = end + 1;
    if (name === '' || name === 'close' || name === 'keep-alive' || name === 'upgrade' || keep.has(name)) continue;
    (into ??= []).push(name);
  }
  return into;
}

/** Removes, in place, every header whose lower-cased name is in `names`. */
export function removeHeaders(headers: string[], names: readonly string[]): void {
  let to = 0;
  for (let from = 0; from < headers.length; from += 2) {
    if (names.includes(headers[from].toLowerCase())) continue;
    headers[to++] = headers[from];
    headers[to++] = headers[from + 1];
  }
  headers.length = to;
}
