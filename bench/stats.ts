/** Small statistics for noisy samples: medians across rounds, percentiles, ratios. */

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

/** a / b, or null when there is nothing to compare against. */
export function ratio(a: number | undefined, b: number | undefined): number | null {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}

/** Round for reports: keeps 3 significant digits, enough for noisy measurements. */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const scale = 10 ** (digits - 1 - Math.floor(Math.log10(Math.abs(value))));
  return Math.round(value * scale) / scale;
}

/** a / b rounded to 2 decimals, or null when there is nothing to compare against. */
export function roundedRatio(a: number | undefined, b: number | undefined): number | null {
  const r = ratio(a, b);
  return r === null ? null : Math.round(r * 100) / 100;
}

/** Round-by-round ratios of two peers measured in the same interleaved rounds: their median and spread. */
export interface PairedRatio {
  median: number;
  low: number;
  high: number;
  rounds: number;
}

/**
 * b[i] / a[i] for every round both have, summarised. Pairing by round cancels what a noisy
 * stretch of the run did to both peers alike, which the ratio of two separate medians does not:
 * two identical peers (an A/A run, 9 rounds on 2 shared cores) had separate medians up to 3 %
 * apart and paired medians under 1 % apart.
 */
export function pairedRatio(a: readonly number[], b: readonly number[]): PairedRatio | null {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const r = ratio(b[i], a[i]);
    if (r !== null) ratios.push(r);
  }
  if (ratios.length === 0) return null;
  const two = (v: number): number => Math.round(v * 1000) / 1000;
  return { median: two(median(ratios)), low: two(Math.min(...ratios)), high: two(Math.max(...ratios)), rounds: ratios.length };
}

/** The median of the round-by-round ratios b[i] / a[i], to 2 decimals, or null. */
export function pairedMedian(a: readonly number[] | undefined, b: readonly number[]): number | null {
  const paired = a === undefined ? null : pairedRatio(a, b);
  return paired === null ? null : Math.round(paired.median * 100) / 100;
}

/** `0.93× (0.84–1.01 over 15 rounds)`. */
export function describePaired(p: PairedRatio | null): string {
  return p === null ? '–' : `${p.median.toFixed(3)}× (${p.low.toFixed(2)}–${p.high.toFixed(2)} over ${p.rounds} rounds)`;
}
