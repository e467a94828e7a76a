// A small seeded PRNG (mulberry32): every random choice in training (shuffling, masking) comes from a seed.

/**
 * A seeded PRNG (mulberry32) whose state can be saved and restored (seedState), so that a resumed run draws the same.
 */
export class Rng {
  private state: number
  constructor (seed: number) { this.state = (seed >>> 0) ^ 0x9e3779b9 }

  /** uniform in [0, 1) */
  next (): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** integer in [0, n) */
  int (n: number): number { return Math.floor(this.next() * n) }

  /** Fisher-Yates, in place */
  shuffle<T> (xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const tmp = xs[i]; xs[i] = xs[j]; xs[j] = tmp
    }
    return xs
  }

  /** k distinct items, in random order */
  sample<T> (xs: readonly T[], k: number): T[] { return this.shuffle([...xs]).slice(0, k) }

  get seedState (): number { return this.state }
  set seedState (s: number) { this.state = s >>> 0 }
}
