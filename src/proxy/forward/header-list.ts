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
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
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
