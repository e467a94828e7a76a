// zeroShot(): the off-the-shelf MLM answers the cloze, as a library call.
import { performance } from 'node:perf_hooks'
import { writeFileAtomic } from '../atomic-write'
import { fieldMap, loadExamples, type DataInput } from '../data/examples'
import { MaskedLM } from '../model'
import { Pattern } from '../pet/pattern'
import { accuracy, scoreExamples } from '../pet/score'
import { Verbalizer, type VerbalizerSpec } from '../pet/verbalizer'
import type { Control } from '../progress'
import type { LabelScoreOptions } from '../pet/label-scores'
import { workflows } from '../options'
import { workflowOptions } from '../validate'
import { joinGroup } from '../distributed/group'
import { loadOptionsOf, modelDirOf, onWorkers, type ModelOptions, type Settled, withModelFolder } from './common'
import { toClassification, type Classification } from '../classifier'

/** The options of zeroShot: the data, the pattern and verbalizer, how label words score, the model and machine. */
export interface ZeroShotOptions extends ModelOptions, Control {
  /** the examples (JSONL path or records); those with a label count towards the accuracy */
  data: DataInput
  pattern: string
  verbalizer: VerbalizerSpec
  textField?: string
  labelField?: string
  labelMap?: Record<string, string> | string
  /** also write the predictions here (JSONL: index, label, gold, scores, probs) */
  out?: string
  batchSize?: number
  maxLength?: number
  manyToOne?: LabelScoreOptions['manyToOne']
  multiToken?: LabelScoreOptions['multiToken']
  /** causal LMs: score the word ('word') or the word and the rest of the pattern ('word+suffix') */
  continuation?: LabelScoreOptions['continuation']
  /** accepted for uniformity: scoring is deterministic */
  seed?: number
  /** local worker processes, each scoring every N-th batch; rank 0 returns (and writes) all, in input order */
  nproc?: number
  /** seconds a worker waits for the others before it fails (default 300) */
  distTimeout?: number
}

/** What zeroShot returns: the accuracy over the labeled examples, counts, speed and one classification per example. */
export interface ZeroShotResult {
  /** over the labeled examples; null when none has a label */
  accuracy: number | null
  n: number
  correct: number
  examples: number
  pattern: string
  verbalizer: Record<string, string[]>
  model: string
  seconds: number
  sentencesPerS: number
  out: string | null
  /** one per example, in order */
  predictions: Classification[]
}

/**
 * Classifies `data` with the model as it is, no training: the model answers the pattern's cloze at [MASK] and the
 * verbalizer's best-scoring label wins. Returns the accuracy over the labeled examples and every prediction (also
 * written to `out` as JSONL).
 */
export async function zeroShot (options: ZeroShotOptions): Promise<ZeroShotResult> {
  const o = await withModelFolder(workflowOptions<Settled<ZeroShotOptions> & { batchSize: number, distTimeout: number }>(workflows.zeroShot, options))
  const onWorkersResult = await onWorkers<ZeroShotResult>('zeroShot', options, o, false)
  if (onWorkersResult !== undefined) return onWorkersResult
  const pattern = new Pattern(o.pattern)
  const examples = loadExamples(o.data, pattern.fields, fieldMap(pattern.fields, o), 'data')
  // A worker of a distributed run scores its share of the batches; every worker ends with all the scores.
  const group = await joinGroup(o.distTimeout)
  const model = await MaskedLM.load(modelDirOf(o), loadOptionsOf(o))
  try {
    const verbalizer = new Verbalizer(o.verbalizer, model.tokenizer, pattern)
    const t0 = performance.now()
    const preds = await scoreExamples(model, pattern, verbalizer, examples, {
      batchSize: o.batchSize, maxLength: o.maxLength, labelScores: { manyToOne: o.manyToOne, multiToken: o.multiToken, score: 'logit', continuation: o.continuation },
      signal: o.signal, onProgress: o.onProgress, shard: group
    })
    const seconds = (performance.now() - t0) / 1000
    const ev = accuracy(examples, preds, verbalizer)
    const predictions = preds.map(p => toClassification(verbalizer.labels, p))
    if (o.out !== undefined && (group?.rank ?? 0) === 0) {
      writeFileAtomic(o.out, predictions.map((p, i) => JSON.stringify({
        index: i, label: p.label, ...(examples[i].label !== undefined ? { gold: examples[i].label } : {}), scores: p.scores, probs: p.probs
      })).join('\n') + '\n')
    }
    return {
      accuracy: ev.n > 0 ? ev.accuracy : null, n: ev.n, correct: ev.correct, examples: examples.length, pattern: pattern.source,
      verbalizer: verbalizer.toJSON(), model: model.dir, seconds, sentencesPerS: examples.length / seconds, out: o.out ?? null, predictions
    }
  } finally {
    model.dispose()
  }
}
