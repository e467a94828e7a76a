// distill(): an ensemble's soft labels distilled into a plain [CLS] classifier, as a library call.
import * as path from 'node:path'
import { exampleOf, type DataInput, type Example } from '../data/examples'
import { readJsonl } from '../data/jsonl'
import { PetError } from '../errors'
import { writeReport } from '../report/run-report'
import { workflows } from '../options'
import { workflowOptions } from '../validate'
import { runClassifier } from './classifier-run'
import { loadOptionsOf, loopOptions, modelDirOf, onWorkers, readSplits, runDir, type RunResult, type Settled, withModelFolder } from './common'
import { runEnsemble, type EnsembleOptions } from './ensemble'

/**
 * The options of distill: ensemble's (or soft labels of an earlier ensemble or ipet run instead), plus the
 * temperature and the classifier's epochs and learning rate.
 */
export interface DistillOptions extends Omit<EnsembleOptions, 'patterns'> {
  /** the ensemble's patterns (or give softLabels + labels instead) */
  patterns?: string | string[]
  /** soft labels written by ensemble/ipet (soft-labels.jsonl) to distil from, instead of training an ensemble */
  softLabels?: DataInput
  /** with softLabels: the label order of their logits */
  labels?: string[]
  /** with softLabels: the text fields (default ['text']) */
  fields?: string[]
  temperature?: number
  distillEpochs?: number
  distillLr?: number
}

/**
 * What distill returns: the classifier run's outcome, the temperature, the soft-labeled count and the ensemble's
 * accuracies (null when soft labels were given).
 */
export interface DistillResult extends RunResult {
  command: 'distill'
  temperature: number
  softLabeled: number
  labels: string[]
  epochs: number
  lr: number
  seed: number
  ensembleDevAccuracy: number | null
  ensembleTestAccuracy: number | null
}

type Settings = Settled<DistillOptions> & { weighting: 'wmean' | 'uniform', fields: string[], temperature: number, distillEpochs: number, distillLr: number }

/**
 * Trains an ensemble (see ensemble()) to label `unlabeled` softly — or reads `softLabels` — then a [CLS]
 * classifier on those soft labels with the KL divergence at temperature T, scaled by T^2 as in PET.
 */
export async function distill (options: DistillOptions): Promise<DistillResult> {
  const o = await withModelFolder(workflowOptions<Settings>(workflows.distill, options))
  const onWorkersResult = await onWorkers<DistillResult>('distill', options, o)
  if (onWorkersResult !== undefined) return onWorkersResult
  const out = runDir(o, 'distill')
  let labels: string[]
  let fields: string[]
  let soft: Array<{ example: Example, logits: number[] }>
  let ensembleDev: number | null = null
  let ensembleTest: number | null = null
  if (o.softLabels !== undefined) {
    if (o.labels === undefined) throw new PetError('softLabels needs labels (the label order of the logits)', 'EINVAL')
    labels = o.labels
    fields = o.fields
    const input = o.softLabels
    const records = typeof input === 'string'
      ? readJsonl(input).map(r => ({ value: r.value, source: `${input}:${r.line}` }))
      : input.map((value, i) => ({ value, source: `softLabels[${i}]` }))
    soft = records.map(r => ({ example: exampleOf(r.value, r.source, fields, {}), logits: softLogits(r.value, r.source, labels.length) }))
  } else {
    if (o.patterns === undefined || o.verbalizer === undefined || o.train === undefined) {
      throw new PetError('distill needs patterns, verbalizer, train and unlabeled (or softLabels and labels)', 'EINVAL')
    }
    if (o.unlabeled === undefined) throw new PetError('distillation needs unlabeled data to label', 'EINVAL')
    const r = await runEnsemble({ ...o, patterns: o.patterns as string[] }, path.join(out, 'ensemble'))
    labels = r.result.labels
    fields = r.fields
    soft = r.unlabeled.map((e, i) => ({ example: e, logits: r.unlabeledScores![i] }))
    ensembleDev = r.result.devAccuracy
    ensembleTest = r.result.testAccuracy
  }
  if (soft.length === 0) throw new PetError('no soft-labeled examples to distil from', 'EDATA')
  const splits = o.train !== undefined || o.dev !== undefined || o.test !== undefined ? readSplits(o, fields) : { train: [], dev: undefined, test: undefined }
  const load = loadOptionsOf(o)
  const modelDir = modelDirOf(o)
  const loop = loopOptions({ ...o, epochs: o.distillEpochs, lr: o.distillLr }, path.join(out, 'student'), { kind: 'all' })
  o.onProgress?.({ kind: 'stage', message: `student: ${soft.length} soft-labeled examples` })
  const r = await runClassifier({
    modelDir, load, labels, fields, maxLength: o.maxLength, evalBatchSize: o.evalBatchSize, seed: o.seed, temperature: o.temperature,
    train: soft.map(s => ({ example: s.example, teacher: s.logits })), splits, loop
  })
  const summary = {
    command: 'distill' as const, temperature: o.temperature, softLabeled: soft.length, labels, epochs: o.distillEpochs, lr: o.distillLr, seed: o.seed,
    bestEpoch: r.bestEpoch, devAccuracy: r.bestDev ?? null, testAccuracy: r.test ?? null,
    ensembleDevAccuracy: ensembleDev, ensembleTestAccuracy: ensembleTest, steps: r.steps, seconds: r.seconds, out, model: r.bestDir
  }
  const report = await writeReport(out, 'pet distill', summary, r.history, r.bestEpoch, r.breakdown)
  return { ...summary, history: r.history, labelBreakdown: r.breakdown ?? null, report }
}

/** The "logits" of one soft-labeled record: one finite number per label. */
function softLogits (record: unknown, source: string, numLabels: number): number[] {
  const logits = (record as { logits?: unknown } | null)?.logits
  if (!Array.isArray(logits) || logits.length !== numLabels || !logits.every(x => typeof x === 'number' && Number.isFinite(x))) {
    throw new PetError(`${source}: "logits" must be ${numLabels} numbers, all finite`, 'EDATA')
  }
  return logits as number[]
}
