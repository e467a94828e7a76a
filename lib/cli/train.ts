import { PetError } from '../errors'
import { defaultModelDir, MaskedLM } from '../model'
import { defaultLabelScoreOptions } from '../pet/label-scores'
import { Pattern } from '../pet/pattern'
import { accuracy, scoreExamples } from '../pet/score'
import { writeTask } from '../pet/task'
import { petSteps } from '../pet/train'
import { Verbalizer } from '../pet/verbalizer'
import { toExamples } from '../data/examples'
import { readJsonl } from '../data/jsonl'
import { runTraining } from '../train/loop'
import { choice, floatFlag, intFlag, Output, parse, required } from './args'
import { dataFlags, dataUsage, defaultOutDir, loopFlags, loopOptions, readSplits, writeReport } from './common'

export const usage = `pet train --train FILE --pattern P --verbalizer JSON [options]
  Few-shot PET: fine-tunes the MLM on the labeled examples in the cloze, with extra random masking of the other
  tokens; picks the epoch with the best dev accuracy; evaluates it on --test.
  pet:   --pattern '[MASK]满意。{text}' --verbalizer '{"positive":["很"],"negative":["不"]}'
         [--mask-rate 0.15] [--label-loss vocab|verbalizer] [--alpha 0.9999 (verbalizer loss weight)]
         [--unlabeled FILE (semi-supervised: unlabeled text, no pattern, MLM-masked)] [--unlabeled-ratio 1]
         [--many-to-one mean|logsumexp] [--multi-token sum|mean]
${dataUsage}
  With --json the last stdout line is {"dev_accuracy":…, "test_accuracy":…, …}.`

export async function run (argv: string[]): Promise<void> {
  const a = parse(argv, {
    ...dataFlags,
    ...loopFlags,
    pattern: { type: 'string' },
    verbalizer: { type: 'string' },
    'mask-rate': { type: 'string' },
    'label-loss': { type: 'string' },
    alpha: { type: 'string' },
    unlabeled: { type: 'string' },
    'unlabeled-ratio': { type: 'string' },
    'many-to-one': { type: 'string' },
    'multi-token': { type: 'string' }
  })
  if (a.help) { console.log(usage); return }
  const out = new Output(a.json === true)
  const pattern = new Pattern(required(a, 'pattern'))
  const verbalizerJson = required(a, 'verbalizer')
  const splits = readSplits(a, pattern.fields, required(a, 'train'))
  const maxLength = intFlag(a, 'max-length', 128, 3)
  const evalBatch = intFlag(a, 'eval-batch-size', 64)
  const labelScores = {
    ...defaultLabelScoreOptions,
    manyToOne: choice(a, 'many-to-one', ['mean', 'logsumexp'] as const, 'mean'),
    multiToken: choice(a, 'multi-token', ['sum', 'mean'] as const, 'sum')
  }
  const lossOpts = {
    labelLoss: choice(a, 'label-loss', ['vocab', 'verbalizer'] as const, 'vocab'),
    alpha: floatFlag(a, 'alpha', 0.9999),
    maskRate: floatFlag(a, 'mask-rate', 0.15),
    unlabeledRatio: floatFlag(a, 'unlabeled-ratio', 1),
    labelScores,
    maxLength
  }
  if (lossOpts.maskRate < 0 || lossOpts.maskRate >= 1) throw new PetError('--mask-rate must be in [0, 1)', 'EINVAL')
  if (lossOpts.alpha <= 0 || lossOpts.alpha > 1) throw new PetError('--alpha must be in (0, 1]', 'EINVAL')
  const textField = (a['text-field'] as string | undefined) ?? 'text'
  const unlabeled = a.unlabeled
    ? toExamples(readJsonl(a.unlabeled as string), pattern.fields, a.unlabeled as string,
      { fields: pattern.fields.length === 1 && textField !== 'text' ? { [pattern.fields[0]]: textField } : undefined })
    : []
  const outDir = (a.out as string | undefined) ?? defaultOutDir('train')
  const modelDir = (a.model as string | undefined) ?? defaultModelDir
  const loadOpts = { device: (a.device as string | undefined) ?? 'cpu', threads: a.threads === undefined ? undefined : intFlag(a, 'threads', 1) }
  const opts = loopOptions(a, outDir, { kind: 'all' }, { lr: 1e-4, epochs: 30, batchSize: 16 })

  // The verbalizer is checked against the vocabulary before the (long) run starts.
  const probe = await MaskedLM.load(modelDir, loadOpts)
  let verbalizer: Verbalizer
  let steps: ReturnType<typeof petSteps>
  try {
    verbalizer = Verbalizer.parse(verbalizerJson, probe.tokenizer)
    steps = petSteps(probe, pattern, verbalizer, splits.train, unlabeled, lossOpts)
  } finally {
    probe.dispose()
  }
  const evaluate = async (model: MaskedLM, examples: NonNullable<typeof splits.dev>) =>
    accuracy(examples, await scoreExamples(model, pattern, verbalizer, examples, { batchSize: evalBatch, maxLength, labelScores }), verbalizer).accuracy
  const result = await runTraining(dir => MaskedLM.load(dir ?? modelDir, loadOpts), {
    items: steps.items,
    buildStep: (items, rng) => steps.buildStep(items, rng),
    evaluate: splits.dev ? model => evaluate(model, splits.dev!) : undefined,
    describe: dir => writeTask(dir, { mode: 'pet', labels: [...verbalizer.labels], pattern: pattern.source, verbalizer: verbalizer.toJSON(), labelScores, maxLength, fields: [...pattern.fields] })
  }, opts)
  result.model.dispose()
  let test: number | undefined
  if (splits.test) {
    const best = await MaskedLM.load(result.bestDir, loadOpts)
    try { test = await evaluate(best, splits.test) } finally { best.dispose() }
  }
  const summary = {
    command: 'train',
    pattern: pattern.source,
    labeled: splits.train.length,
    unlabeled: unlabeled.length,
    label_loss: lossOpts.labelLoss,
    mask_rate: lossOpts.maskRate,
    epochs: opts.epochs,
    lr: opts.lr,
    batch_size: opts.batchSize,
    seed: opts.seed,
    best_epoch: result.bestEpoch,
    dev_accuracy: result.bestDev ?? null,
    test_accuracy: test ?? null,
    steps: result.steps,
    seconds: result.seconds,
    out: outDir,
    model: result.bestDir
  }
  writeReport(outDir, `pet train ${pattern.source}`, summary, result)
  out.line(`best epoch ${result.bestEpoch}: dev accuracy ${fmt(result.bestDev)}, test accuracy ${fmt(test)}  (${result.seconds.toFixed(0)} s; model in ${result.bestDir})`)
  out.summary(summary)
}

function fmt (x: number | undefined): string { return x === undefined ? '—' : x.toFixed(4) }
