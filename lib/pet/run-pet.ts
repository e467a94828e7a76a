// One PET training run (one pattern): train with model selection on dev, then score the best checkpoint on test.
import type { Example } from '../data/examples'
import { joinGroup } from '../distributed/group'
import { ModelFolder } from '../model-folder'
import { MaskedLM, type LoadOptions } from '../model'
import { runTraining, type LoopOptions, type LoopResult } from '../train/loop'
import type { Pattern } from './pattern'
import { accuracy, scoreExamples, type ScoreShard } from './score'
import { writeTask } from './task'
import { labelBreakdown, type LabelBreakdown } from '../report/per-label'
import { petSteps, type PetLossOptions } from './train'
import { Verbalizer, type VerbalizerSpec } from './verbalizer'

/** One PET run's inputs: the model, the pattern and verbalizer, the data splits, the loss and the loop's settings. */
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

/**
 * What a PET run returns: the loop's outcome, the test accuracy, the verbalizer, the settled mask rate, the breakdown.
 */
export interface PetRunResult extends LoopResult {
  test?: number
  verbalizer: Verbalizer
  /** the share of tokens randomly masked, as settled for the model (0 for a causal LM) */
  maskRate: number
  /** the best model's accuracy per label and most confused pairs, on test (else dev) */
  breakdown?: LabelBreakdown
}

/** The model's accuracy on labeled examples with the pattern and verbalizer (model selection on dev). */
export async function evaluatePet (model: MaskedLM, pattern: Pattern, verbalizer: Verbalizer, examples: readonly Example[],
  o: Pick<PetRunOptions, 'evalBatchSize' | 'loss'>, shard?: ScoreShard): Promise<number> {
  const preds = await scoreExamples(model, pattern, verbalizer, examples, { batchSize: o.evalBatchSize, maxLength: o.loss.maxLength, labelScores: o.loss.labelScores, shard })
  return accuracy(examples, preds, verbalizer).accuracy
}

/** What scoreFinal measures of a trained model: test accuracy and the per-label breakdown. */
export interface FinalScores {
  /** accuracy on test; undefined without a test split */
  test?: number
  /** per label, on test (else dev); undefined without either */
  breakdown?: LabelBreakdown
}

/**
 * The trained model scored on test (else dev) at the end of a run: accuracy and per-label breakdown. A distributed
 * run scores it sharded, as dev: every worker ends with one process's predictions.
 */
export async function scoreFinal (model: MaskedLM, pattern: Pattern, verbalizer: Verbalizer, splits: { dev?: readonly Example[], test?: readonly Example[] },
  o: Pick<PetRunOptions, 'evalBatchSize' | 'loss' | 'loop'>): Promise<FinalScores> {
  const split = splits.test ?? splits.dev
  if (split === undefined) return {}
  const shard = await joinGroup(o.loop.distTimeout)
  const preds = await scoreExamples(model, pattern, verbalizer, split, { batchSize: o.evalBatchSize, maxLength: o.loss.maxLength, labelScores: o.loss.labelScores, shard })
  return {
    test: splits.test !== undefined ? accuracy(splits.test, preds, verbalizer).accuracy : undefined,
    breakdown: labelBreakdown(splits.test !== undefined ? 'test' : 'dev', verbalizer.labels, split, preds)
  }
}

/**
 * One PET run for one pattern (train, ensemble and iPET members): checks the verbalizer and data against the
 * vocabulary, trains with model selection on dev (the best model saved with its pet.json), then scores it on test
 * (else dev).
 */
export async function runPet (o: PetRunOptions): Promise<PetRunResult> {
  // The verbalizer and the data are checked against the vocabulary before the (long) run starts.
  const folder = ModelFolder.read(o.modelDir)
  const verbalizer = new Verbalizer(o.verbalizer, folder.tokenizer, o.pattern)
  const steps = petSteps(folder, o.pattern, verbalizer, o.train, o.unlabeled, o.loss)
  const result = await runTraining(dir => MaskedLM.load(dir ?? o.modelDir, o.load), {
    items: steps.items,
    buildStep: (items, rng) => steps.buildStep(items, rng),
    evaluate: o.dev ? (m, shard) => evaluatePet(m, o.pattern, verbalizer, o.dev!, o, shard) : undefined,
    describe: dir => writeTask(dir, {
      mode: 'pet', labels: [...verbalizer.labels], pattern: o.pattern.source, verbalizer: verbalizer.toJSON(),
      labelScores: o.loss.labelScores, maxLength: o.loss.maxLength, fields: [...o.pattern.fields]
    })
  }, o.loop)
  let final: FinalScores = {}
  if (o.test !== undefined || o.dev !== undefined) {
    const best = await MaskedLM.load(result.bestDir, o.load)
    try {
      final = await scoreFinal(best, o.pattern, verbalizer, o, o)
    } finally { best.dispose() }
  }
  return { ...result, ...final, verbalizer, maskRate: steps.maskRate }
}
