// From candidate scores at the [MASK] slots of one example to one score per label.
import type { Verbalizer } from './verbalizer'

export interface LabelScoreOptions {
  /** several words for a label: the mean of their scores (PET) or log of the summed probabilities */
  manyToOne: 'mean' | 'logsumexp'
  /**
   * several [MASK] slots: the sum or the mean of per-slot log-probabilities in one pass, or PET's iterative
   * decoding ('iterative': fill the most confident slot with the word's token, run again, …; S passes per word)
   */
  multiToken: 'sum' | 'mean' | 'iterative'
  /** single-slot words: raw logits (PET) or log-probabilities; multi-slot words always use log-probabilities */
  score: 'logit' | 'logprob'
}

export const defaultLabelScoreOptions: LabelScoreOptions = { manyToOne: 'mean', multiToken: 'sum', score: 'logit' }

/**
 * logits/logZ hold the example's slots in pattern order: logits[slot * C + c] for candidate c of the
 * verbalizer's candidate list, logZ[slot].
 */
export function labelScores (v: Verbalizer, logits: ArrayLike<number>, logZ: ArrayLike<number>,
  opts: LabelScoreOptions = defaultLabelScoreOptions): number[] {
  const C = v.candidates.length
  const useLogit = v.slots === 1 && opts.score === 'logit' && opts.manyToOne === 'mean'
  return v.words.map(words => {
    const scores = words.map(w => {
      let s = 0
      for (let slot = 0; slot < w.ids.length; slot++) {
        const c = v.candidateIndex.get(w.ids[slot])!
        s += useLogit ? logits[slot * C + c] : logits[slot * C + c] - logZ[slot]
      }
      return opts.multiToken === 'mean' ? s / w.ids.length : s
    })
    if (scores.length === 1) return scores[0]
    if (opts.manyToOne === 'mean') return scores.reduce((a, b) => a + b, 0) / scores.length
    const max = Math.max(...scores)
    return max + Math.log(scores.reduce((a, s) => a + Math.exp(s - max), 0))
  })
}

export function argmax (xs: ArrayLike<number>): number {
  let best = 0
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i
  return best
}

/** Softmax of label scores (probabilities for ensembling and soft labels). */
export function softmax (xs: readonly number[], temperature = 1): number[] {
  const max = Math.max(...xs)
  const e = xs.map(x => Math.exp((x - max) / temperature))
  const z = e.reduce((a, b) => a + b, 0)
  return e.map(x => x / z)
}
