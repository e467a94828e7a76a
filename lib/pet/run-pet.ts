// One PET training run (one pattern): train with model selection on dev, then score the best checkpoint on test.
import type { Example } from '../data/examples'
import { MaskedLM, type LoadOptions } from '../model'
import { runTraining, type LoopOptions, type LoopResult } from '../train/loop'
import type { Pattern } from './pattern'
import { accuracy, scoreExamples, type ScoreShard } from './score'
import { writeTask } from './task'
import { labelBreakdown, type LabelBreakdown } from '../report/per-label'
import { petSteps, type PetLossOptions } from './train'
import { Verbalizer, type VerbalizerSpec } from './verbalizer'

export interface PetRunOptions {
  modelDir: string
  load: Partial<LoadOptions>
  pattern: Pattern
  verbalizer: VerbalizerSpec
  train: readonly Example[]
  dev?: readonly Example[]
  test?: readonly Example[]
  unlabeled: readonly Example[]
  loss: PetLossOptions
  loop: LoopOptions
  evalBatchSize: number
}

export interface PetRunResult extends LoopResult {
  test?: number
  verbalizer: Verbalizer
  /** the best model's accuracy per label and most confused pairs, on test (else dev) */
  breakdown?: LabelBreakdown
}

export async function evaluatePet (model: MaskedLM, pattern: Pattern, verbalizer: Verbalizer, examples: readonly Example[],
  o: Pick<PetRunOptions, 'evalBatchSize' | 'loss'>, shard?: ScoreShard): Promise<number> {
  const preds = await scoreExamples(model, pattern, verbalizer, examples, { batchSize: o.evalBatchSize, maxLength: o.loss.maxLength, labelScores: o.loss.labelScores, shard })
  return accuracy(examples, preds, verbalizer).accuracy
}

export async function runPet (o: PetRunOptions): Promise<PetRunResult> {
  // The verbalizer and the data are checked against the vocabulary before the (long) run starts.
  const probe = await MaskedLM.load(o.modelDir, o.load)
  let verbalizer: Verbalizer
  let steps: ReturnType<typeof petSteps>
  try {
    verbalizer = new Verbalizer(o.verbalizer, probe.tokenizer)
    steps = petSteps(probe, o.pattern, verbalizer, o.train, o.unlabeled, o.loss)
  } finally {
    probe.dispose()
  }
  const result = await runTraining(dir => MaskedLM.load(dir ?? o.modelDir, o.load), {
    items: steps.items,
    buildStep: (items, rng) => steps.buildStep(items, rng),
    evaluate: o.dev ? (m, shard) => evaluatePet(m, o.pattern, verbalizer, o.dev!, o, shard) : undefined,
    describe: dir => writeTask(dir, {
      mode: 'pet', labels: [...verbalizer.labels], pattern: o.pattern.source, verbalizer: verbalizer.toJSON(),
      labelScores: o.loss.labelScores, maxLength: o.loss.maxLength, fields: [...o.pattern.fields]
    })
  }, o.loop)
  let test: number | undefined
  let breakdown: LabelBreakdown | undefined
  const split = o.test ?? o.dev
  if (split) {
    const best = await MaskedLM.load(result.bestDir, o.load)
    try {
      const preds = await scoreExamples(best, o.pattern, verbalizer, split, { batchSize: o.evalBatchSize, maxLength: o.loss.maxLength, labelScores: o.loss.labelScores })
      if (o.test) test = accuracy(o.test, preds, verbalizer).accuracy
      breakdown = labelBreakdown(o.test ? 'test' : 'dev', verbalizer.labels, split, preds)
    } finally { best.dispose() }
  }
  return { ...result, test, verbalizer, breakdown }
}
