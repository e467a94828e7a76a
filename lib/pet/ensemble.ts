// Several PET models (one per pattern) combined: label scores averaged with weights, as PET merges its
// models' logits; the result labels unlabeled data softly for distillation.
import { writeFileAtomic } from '../atomic-write'
import type { Example } from '../data/examples'
import { MaskedLM, type LoadOptions } from '../model'
import { argmax, softmax, type LabelScoreOptions } from './label-scores'
import { Pattern } from './pattern'
import { accuracy, scoreExamples, type Prediction, type ScoreShard } from './score'
import { Verbalizer, type VerbalizerSpec } from './verbalizer'

/** One model of an ensemble: where it is, the pattern it was trained with, and its weight in the mean. */
export interface EnsembleMember {
  /** a trained model directory (or the base model, for zero-shot members) */
  dir: string
  pattern: string
  weight: number
}

/** How ensemble members score: the verbalizer, how models load, batch and length limits, the label-scoring rule. */
export interface EnsembleOptions {
  verbalizer: VerbalizerSpec
  load: Partial<LoadOptions>
  batchSize: number
  maxLength: number
  labelScores: LabelScoreOptions
  signal?: AbortSignal
  /** a worker of a distributed run: each member scores its share of the batches, every worker gets all the scores */
  shard?: ScoreShard
}

/** Weighted mean of the members' label scores: [examples][labels]. */
export async function ensembleScores (members: readonly EnsembleMember[], examples: readonly Example[],
  o: EnsembleOptions): Promise<{ labels: string[], scores: number[][] }> {
  const total = members.reduce((s, m) => s + m.weight, 0)
  let labels: string[] = []
  const sum: number[][] = examples.map(() => [])
  for (const m of members) {
    const model = await MaskedLM.load(m.dir, o.load)
    try {
      const pattern = new Pattern(m.pattern)
      const verbalizer = new Verbalizer(o.verbalizer, model.tokenizer, pattern)
      labels = [...verbalizer.labels]
      const preds = await scoreExamples(model, pattern, verbalizer, examples, { batchSize: o.batchSize, maxLength: o.maxLength, labelScores: o.labelScores, signal: o.signal, shard: o.shard })
      preds.forEach((p, e) => p.scores.forEach((s, l) => { sum[e][l] = (sum[e][l] ?? 0) + s * m.weight / total }))
    } finally {
      model.dispose()
    }
  }
  return { labels, scores: sum }
}

/** Rows of label scores as predictions: the top label, the scores and their softmax. */
export function toPredictions (labels: readonly string[], scores: readonly number[][]): Prediction[] {
  return scores.map(s => ({ label: labels[argmax(s)], scores: [...s], probs: softmax([...s]) }))
}

/** The ensemble's accuracy on labeled examples; null without them. */
export async function ensembleAccuracy (members: readonly EnsembleMember[], examples: readonly Example[] | undefined,
  o: EnsembleOptions): Promise<number | null> {
  if (!examples) return null
  const { labels, scores } = await ensembleScores(members, examples, o)
  return accuracy(examples, toPredictions(labels, scores), labels).accuracy
}

/** soft-labels.jsonl: each unlabeled example's fields with the ensemble's label scores ("logits"), for distill. */
export function writeSoftLabels (file: string, examples: readonly Example[], scores: readonly number[][]): void {
  writeFileAtomic(file, examples.map((e, i) => JSON.stringify({ ...e.fields, logits: scores[i] })).join('\n') + '\n')
}
