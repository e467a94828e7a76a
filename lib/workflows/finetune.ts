// finetune(): the baseline PET must beat — a plain [CLS] classifier on the same encoder — as a library call.
import type { Example } from '../data/examples'
import { PetError } from '../errors'
import type { VerbalizerSpec } from '../pet/verbalizer'
import type { Control } from '../progress'
import { writeReport } from '../report/run-report'
import { workflows } from '../options'
import { workflowOptions } from '../validate'
import { runClassifier } from './classifier-run'
import {
  loadOptionsOf, loopOptions, modelDirOf, readSplits, runDir,
  type DataOptions, type ModelOptions, type RunResult, type Settled, type TrainingOptions, onWorkers,
  withModelFolder
} from './common'

/** The options of finetune: the model, the data splits, the training loop, and the label order and text fields. */
export interface FinetuneOptions extends ModelOptions, DataOptions, TrainingOptions, Control {
  /** the label order (default: the verbalizer's labels, else the sorted training labels) */
  labels?: string[]
  /** the text fields, in order (default ['text']) */
  fields?: string[]
  /** only its label order is used */
  verbalizer?: VerbalizerSpec
}

/**
 * What finetune returns: the run's outcome (best epoch, accuracies, model directory, history, report), its label order
 * and settings.
 */
export interface FinetuneResult extends RunResult {
  command: 'finetune'
  labeled: number
  labels: string[]
  epochs: number
  lr: number
  batchSize: number
  seed: number
}

/**
 * The baseline PET is measured against: a classification head on the encoder's [CLS] output, trained on the labeled
 * examples without a pattern; the epoch with the best dev accuracy is kept in out/best and scored on `test`.
 */
export async function finetune (options: FinetuneOptions): Promise<FinetuneResult> {
  const o = await withModelFolder(workflowOptions<Settled<FinetuneOptions> & { fields: string[] }>(workflows.finetune, options))
  const onWorkersResult = await onWorkers<FinetuneResult>('finetune', options, o)
  if (onWorkersResult !== undefined) return onWorkersResult
  const fields = o.fields
  const splits = readSplits(o, fields)
  const labels = labelList(o, splits.train)
  const out = runDir(o, 'finetune')
  const modelDir = modelDirOf(o)
  const load = loadOptionsOf(o)
  const loop = loopOptions(o, out, { kind: 'all' })
  const r = await runClassifier({
    modelDir, load, labels, fields, maxLength: o.maxLength, evalBatchSize: o.evalBatchSize, seed: o.seed, temperature: 1,
    train: splits.train.map(example => ({ example, label: labelIndex(labels, example) })), splits, loop
  })
  const summary = {
    command: 'finetune' as const, labeled: splits.train.length, labels, epochs: o.epochs, lr: o.lr, batchSize: o.batchSize, seed: o.seed,
    bestEpoch: r.bestEpoch, devAccuracy: r.bestDev ?? null, testAccuracy: r.test ?? null, steps: r.steps, seconds: r.seconds,
    out, model: r.bestDir
  }
  const report = await writeReport(out, 'pet finetune', summary, r.history, r.bestEpoch, r.breakdown)
  return { ...summary, history: r.history, labelBreakdown: r.breakdown ?? null, report }
}

/** The label order: `labels`, else the verbalizer's, else the sorted labels of the training set. */
export function labelList (o: { labels?: string[], verbalizer?: VerbalizerSpec }, train: readonly Example[]): string[] {
  if (o.labels !== undefined) {
    if (o.labels.length < 2 || new Set(o.labels).size !== o.labels.length) throw new PetError('labels must list at least two distinct label names', 'EINVAL')
    return o.labels
  }
  if (o.verbalizer !== undefined) return Object.keys(o.verbalizer)
  const seen = [...new Set(train.map(e => e.label).filter((x): x is string => x !== undefined))].sort()
  if (seen.length < 2) throw new PetError('the training set has fewer than two labels; give labels', 'EDATA')
  return seen
}

/** A training example's label as an index into `labels`; an EDATA PetError when it has none or one not in the list. */
export function labelIndex (labels: readonly string[], e: Example): number {
  if (e.label === undefined) throw new PetError(`${e.source}: a training example has no label`, 'EDATA')
  const i = labels.indexOf(e.label)
  if (i < 0) throw new PetError(`${e.source}: unknown label '${e.label}' (labels: ${labels.join(', ')})`, 'EDATA')
  return i
}
