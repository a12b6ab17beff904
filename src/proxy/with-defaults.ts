/**
 * `{...defaults, ...overrides}` where an `undefined` override keeps the default: configs are
 * often assembled from optional fields (`{ intervalMs: file.health?.intervalMs }`).
 */
export function withDefaults<T extends object>(defaults: Readonly<T>, overrides: Partial<T> = {}): T {
  const merged = { ...defaults } as T;
  for (const key of Object.keys(overrides) as (keyof T)[]) {
    const value = overrides[key];
    if (value !== undefined) merged[key] = value as T[keyof T];
  }
  return merged;
}
