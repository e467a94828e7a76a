// iPET: generations of PET models, each trained on the labeled set plus examples that a random subset of the
// previous generation's other models labeled, with the labeled set growing by a factor per generation.
import { PetError } from '../errors'
import type { Rng } from '../train/rng'
import { argmax, softmax } from './label-scores'

/** Which of the other models label for model i: a random logitsShare of them, at least one. */
export function pickTeachers (i: number, models: number, share: number, rng: Rng): number[] {
  const others = [...Array(models).keys()].filter(j => j !== i)
  if (others.length === 0) throw new PetError('iPET needs at least two patterns', 'EINVAL')
  return rng.sample(others, Math.max(1, Math.floor(share * others.length)))
}

/**
 * Chooses `count` pseudo-labeled examples that keep the label distribution `ratio` of the labeled set, the most
 * confident first. A label with too few predicted examples gets what there is: the selection never loops.
 */
export function selectPseudoLabeled (scores: readonly number[][], ratio: readonly number[], count: number): Array<{ index: number, label: number }> {
  const byLabel: Array<Array<{ index: number, p: number }>> = ratio.map(() => [])
  scores.forEach((s, index) => {
    const probs = softmax([...s])
    const label = argmax(probs)
    byLabel[label].push({ index, p: probs[label] })
  })
  const out: Array<{ index: number, label: number }> = []
  ratio.forEach((r, label) => {
    const want = Math.round(count * r)
    byLabel[label].sort((a, b) => b.p - a.p || a.index - b.index)
    for (const x of byLabel[label].slice(0, want)) out.push({ index: x.index, label })
  })
  return out
}

/** The labeled set's label distribution. */
export function labelRatio (labels: readonly number[], numLabels: number): number[] {
  const counts = new Array(numLabels).fill(0)
  for (const l of labels) counts[l]++
  return counts.map(c => c / labels.length)
}
