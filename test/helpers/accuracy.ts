/**
 * Whether `x` is an accuracy over `n` examples: a number in [0, 1] (so not NaN, null or Infinity) that is k/n for a
 * whole k. An accuracy that is merely in [0, 1] passes for almost any wrong value; this one must be a count over the
 * examples scored.
 */
export function isAccuracyOver (x: unknown, n: number): boolean {
  return typeof x === 'number' && x >= 0 && x <= 1 && Math.abs(x * n - Math.round(x * n)) < 1e-9
}
