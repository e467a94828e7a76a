// train(): few-shot PET (and semi-supervised with `unlabeled`) as a library call.
import { Pattern } from '../pet/pattern'
import { runPet } from '../pet/run-pet'
import type { Control } from '../progress'
import { writeReport } from '../report/run-report'
import { workflows } from '../options'
import { workflowOptions } from '../validate'
import {
  loadOptionsOf, loopOptions, modelDirOf, petLoss, readSplits, readUnlabeled, runDir,
  type DataOptions, type ModelOptions, type PetOptions, type RunResult, type Settled, type TrainingOptions, onWorkers,
  withModelFolder
} from './common'

/** The options of train: the model, the data splits, the training loop, PET's loss and label scoring, the pattern. */
export interface TrainOptions extends ModelOptions, DataOptions, TrainingOptions, PetOptions, Control {
  /** the cloze, e.g. '[MASK]满意。{text}' */
  pattern: string
}

/**
 * What train returns: the run's outcome (best epoch, accuracies, model directory, history, report) and its settings.
 */
export interface TrainResult extends RunResult {
  command: 'train'
  pattern: string
  labeled: number
  unlabeled: number
  labelLoss: string
  maskRate: number
  epochs: number
  lr: number
  batchSize: number
  seed: number
}

/**
 * Fine-tunes the MLM on the labeled examples in the cloze (plus random masking of the other tokens; with
 * `unlabeled`, MLM on unlabeled text in the same batches), keeps the epoch with the best dev accuracy in
 * out/best (a model directory Classifier.load reads) and scores it on `test`.
 */
export async function train (options: TrainOptions): Promise<TrainResult> {
  const o = await withModelFolder(workflowOptions<Settled<TrainOptions>>(workflows.train, options))
  const onWorkersResult = await onWorkers<TrainResult>('train', options, o)
  if (onWorkersResult !== undefined) return onWorkersResult
  const pattern = new Pattern(o.pattern)
  const splits = readSplits(o, pattern.fields)
  const unlabeled = readUnlabeled(o, pattern.fields)
  const loss = petLoss(o)
  const out = runDir(o, 'train')
  const loop = loopOptions(o, out, { kind: 'all' })
  const r = await runPet({
    modelDir: modelDirOf(o), load: loadOptionsOf(o), pattern, verbalizer: o.verbalizer!,
    train: splits.train, dev: splits.dev, test: splits.test, unlabeled, loss, loop, evalBatchSize: o.evalBatchSize
  })
  const summary = {
    command: 'train' as const, pattern: pattern.source, labeled: splits.train.length, unlabeled: unlabeled.length,
    labelLoss: loss.labelLoss, maskRate: r.maskRate, epochs: o.epochs, lr: o.lr, batchSize: o.batchSize, seed: o.seed,
    bestEpoch: r.bestEpoch, devAccuracy: r.bestDev ?? null, testAccuracy: r.test ?? null, steps: r.steps, seconds: r.seconds,
    out, model: r.bestDir
  }
  const report = await writeReport(out, `pet train ${pattern.source}`, summary, r.history, r.bestEpoch, r.breakdown)
  return { ...summary, history: r.history, labelBreakdown: r.breakdown ?? null, report }
}
