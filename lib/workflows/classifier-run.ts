// One training run of the [CLS] classifier — fine-tuning on hard labels or distillation on soft ones — with model
// selection on dev, then the best checkpoint scored on test (else dev) with its per-label breakdown.
import type { Example } from '../data/examples'
import { joinGroup } from '../distributed/group'
import { MaskedLM, type LoadOptions } from '../model'
import { ModelFolder } from '../model-folder'
import { classifierAccuracy, classifierSteps, encodePlain, evaluateClassifier } from '../pet/cls-head'
import { writeTask } from '../pet/task'
import type { ScoreShard } from '../pet/score'
import type { LabelBreakdown } from '../report/per-label'
import { runTraining, type LoopOptions, type LoopResult } from '../train/loop'
import type { Splits } from './common'

/**
 * One [CLS] classifier run's inputs: the model, its labels and text fields, the examples with a label index or teacher
 * logits each, the temperature, the dev/test splits and the loop's settings.
 */
export interface ClassifierRun {
  modelDir: string
  load: Partial<LoadOptions>
  labels: string[]
  fields: string[]
  maxLength: number
  evalBatchSize: number
  seed: number
  /** what each example teaches: a label index (fine-tuning) or teacher logits (distillation) */
  train: Array<{ example: Example, label?: number, teacher?: number[] }>
  /** distillation temperature (1 for fine-tuning) */
  temperature: number
  splits: Omit<Splits, 'train'>
  loop: LoopOptions
}

/**
 * Trains the [CLS] classifier (fine-tuning or distillation) with model selection on dev, then scores the best
 * checkpoint on test (else dev) with its per-label breakdown.
 */
export async function runClassifier (o: ClassifierRun): Promise<LoopResult & { test?: number, breakdown?: LabelBreakdown }> {
  const { labels, fields, maxLength, splits } = o
  const folder = ModelFolder.read(o.modelDir)
  const items = o.train.map(t => ({ input: encodePlain(folder, t.example, fields, maxLength), label: t.label, teacher: t.teacher }))
  const devInputs = splits.dev?.map(e => encodePlain(folder, e, fields, maxLength))
  const task = {
    ...classifierSteps(folder, items, labels.length, o.temperature),
    evaluate: splits.dev ? (m: MaskedLM, shard?: ScoreShard) => classifierAccuracy(m, labels, splits.dev!, devInputs!, o.evalBatchSize, shard) : undefined,
    describe: (dir: string) => writeTask(dir, { mode: 'classifier', labels, maxLength, fields })
  }
  const r = await runTraining(async dir => {
    const model = await MaskedLM.load(dir ?? o.modelDir, o.load)
    model.addClassifier(labels.length, o.seed)
    return model
  }, task, o.loop)
  const split = splits.test ?? splits.dev
  // a distributed run scores it sharded, as dev: every worker ends with one process's predictions
  const shard = await joinGroup(o.loop.distTimeout)
  const evaluated = split ? await evaluateClassifier(r.bestDir, o.load, labels, splits.test ? 'test' : 'dev', split, fields, maxLength, o.evalBatchSize, shard) : undefined
  return { ...r, test: splits.test ? evaluated?.accuracy : undefined, breakdown: evaluated?.breakdown }
}
