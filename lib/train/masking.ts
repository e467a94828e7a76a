// BERT's random masking: a share of the eligible tokens become targets; of those 80% are replaced by [MASK],
// 10% by a random token and 10% kept. Special tokens and the pattern's own [MASK] slots are never chosen.
import type { Rng } from './rng'

/**
 * BERT-style random masking's settings: the share of tokens chosen, the [MASK] id, the vocabulary for random
 * replacements, the ids never chosen.
 */
export interface MaskingOptions {
  rate: number
  maskId: number
  vocabSize: number
  /** ids never masked nor drawn as random replacements ([CLS], [SEP], [PAD], [MASK], [UNK]) */
  special: ReadonlySet<number>
}

/** A masked sequence: the ids with the chosen tokens replaced, and the original token at each chosen column. */
export interface Masked {
  inputIds: number[]
  /** (column, original token id) of each target */
  targets: Array<[number, number]>
}

/**
 * BERT's random masking of one sequence: each eligible token (not special, not in `exclude`) becomes a target with
 * probability `rate`; a target is replaced by [MASK] (80 %), a random token (10 %) or kept (10 %).
 */
export function randomMasking (ids: readonly number[], exclude: ReadonlySet<number>, rng: Rng, o: MaskingOptions): Masked {
  const inputIds = [...ids]
  const targets: Array<[number, number]> = []
  for (let i = 0; i < ids.length; i++) {
    if (exclude.has(i) || o.special.has(ids[i])) continue
    const r = rng.next()
    if (r >= o.rate) continue
    targets.push([i, ids[i]])
    if (r < o.rate * 0.8) inputIds[i] = o.maskId
    else if (r < o.rate * 0.9) {
      let id: number
      do { id = 1 + rng.int(o.vocabSize - 1) } while (o.special.has(id))
      inputIds[i] = id
    }
  }
  return { inputIds, targets }
}
