// Scoring examples in a cloze: encode with the pattern, batch by length, read the verbalizer candidates at
// the [MASK] slots, and turn them into label scores. Used by zero-shot, evaluation and pseudo-labelling.
import { lengthBuckets, padBatch } from '../batch'
import type { Example } from '../data/examples'
import { PetError } from '../errors'
import type { MaskedLM } from '../model'
import { argmax, defaultLabelScoreOptions, labelScores, softmax, type LabelScoreOptions } from './label-scores'
import type { EncodedInput, Pattern } from './pattern'
import type { Verbalizer } from './verbalizer'

export interface ScoreOptions {
  batchSize: number
  maxLength: number
  labelScores: LabelScoreOptions
  onProgress?: (done: number, total: number) => void
}

export const defaultScoreOptions: ScoreOptions = { batchSize: 32, maxLength: 128, labelScores: defaultLabelScoreOptions }

export interface Prediction {
  label: string
  /** one score per verbalizer label */
  scores: number[]
  /** softmax of the scores */
  probs: number[]
}

export function checkPatternVerbalizer (pattern: Pattern, verbalizer: Verbalizer): void {
  if (pattern.maskCount !== verbalizer.slots) {
    throw new PetError(`the pattern '${pattern.source}' has ${pattern.maskCount} [MASK] but the verbalizer words have ` +
      `${verbalizer.slots} token(s): they must match`, 'EPATTERN')
  }
}

export function encodeExamples (model: MaskedLM, pattern: Pattern, examples: readonly Example[], maxLength: number): EncodedInput[] {
  const limit = Math.min(maxLength, model.maxPositions)
  return examples.map(e => {
    try {
      return pattern.encode(e.fields, model.tokenizer, limit)
    } catch (err) {
      if (err instanceof PetError) throw new PetError(`${e.source}: ${err.message}`, err.code)
      throw err
    }
  })
}

export async function scoreExamples (model: MaskedLM, pattern: Pattern, verbalizer: Verbalizer,
  examples: readonly Example[], options: Partial<ScoreOptions> = {}): Promise<Prediction[]> {
  const opts = { ...defaultScoreOptions, ...options }
  checkPatternVerbalizer(pattern, verbalizer)
  const encoded = encodeExamples(model, pattern, examples, opts.maxLength)
  const out: Prediction[] = new Array(examples.length)
  const C = verbalizer.candidates.length
  const S = pattern.maskCount
  let done = 0
  for (const bucket of lengthBuckets(encoded.map(e => e.inputIds.length), opts.batchSize)) {
    const items = bucket.map(i => encoded[i])
    const batch = padBatch(items, model.tokenizer.padId)
    const positions = new Int32Array(items.length * S * 2)
    items.forEach((e, b) => e.maskPositions.forEach((col, s) => {
      positions[(b * S + s) * 2] = b
      positions[(b * S + s) * 2 + 1] = col
    }))
    const r = await model.scoreCandidates(batch, positions, verbalizer.candidates)
    bucket.forEach((index, b) => {
      const logits = r.logits.subarray(b * S * C, (b + 1) * S * C)
      const logZ = r.logZ.subarray(b * S, (b + 1) * S)
      const scores = labelScores(verbalizer, logits, logZ, opts.labelScores)
      out[index] = { label: verbalizer.labels[argmax(scores)], scores, probs: softmax(scores) }
    })
    done += bucket.length
    opts.onProgress?.(done, examples.length)
  }
  return out
}

export interface Evaluation {
  accuracy: number
  /** labeled examples counted */
  n: number
  correct: number
}

/** Accuracy over the labeled examples; a label outside `labels` (e.g. the verbalizer's) is an error. */
export function accuracy (examples: readonly Example[], predictions: readonly Prediction[],
  labels: readonly string[] | Verbalizer): Evaluation {
  const known = Array.isArray(labels) ? labels as readonly string[] : (labels as Verbalizer).labels
  let n = 0
  let correct = 0
  examples.forEach((e, i) => {
    if (e.label === undefined) return
    if (!known.includes(e.label)) {
      throw new PetError(`${e.source}: unknown label '${e.label}' (known labels: ${known.map(l => `'${l}'`).join(', ')})`, 'EDATA')
    }
    n++
    if (predictions[i].label === e.label) correct++
  })
  return { accuracy: n > 0 ? correct / n : NaN, n, correct }
}
