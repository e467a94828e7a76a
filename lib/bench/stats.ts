// Small statistics for benchmark figures: percentiles of latencies and min / median / max over runs.

export interface Spread {
  min: number
  median: number
  max: number
}

/** Percentile by linear interpolation between closest ranks (p in [0, 100]). */
export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const s = [...values].sort((a, b) => a - b)
  const rank = (p / 100) * (s.length - 1)
  const lo = Math.floor(rank)
  const hi = Math.ceil(rank)
  return s[lo] + (s[hi] - s[lo]) * (rank - lo)
}

export function spread (values: readonly number[]): Spread {
  if (values.length === 0) return { min: NaN, median: NaN, max: NaN }
  return { min: Math.min(...values), median: percentile(values, 50), max: Math.max(...values) }
}

/** "12.3 / 12.5 / 12.9" with a fixed number of decimals. */
export function formatSpread (s: Spread, digits = 1): string {
  return [s.min, s.median, s.max].map(x => Number.isFinite(x) ? x.toFixed(digits) : '–').join(' / ')
}
