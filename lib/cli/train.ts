import { defaultModelDir } from '../model'
import { Pattern } from '../pet/pattern'
import { runPet } from '../pet/run-pet'
import { intFlag, Output, parse, required } from './args'
import { dataFlags, dataUsage, defaultOutDir, loadFlags, loopFlags, loopOptions, readSplits, writeReport } from './common'
import { petFlags, petLossFromFlags, petUsage, readUnlabeled, verbalizerSpec } from './pet-flags'

export const usage = `pet train --train FILE --pattern P --verbalizer JSON [options]
  Few-shot PET: fine-tunes the MLM on the labeled examples in the cloze, with extra random masking of the other
  tokens; picks the epoch with the best dev accuracy; evaluates it on --test. With --unlabeled, semi-supervised:
  the unlabeled text (no pattern) is MLM-masked and trained on in the same batches.
  --pattern '[MASK]满意。{text}'
${petUsage}
${dataUsage}
  With --json the last stdout line is {"dev_accuracy":…, "test_accuracy":…, …}.`

export async function run (argv: string[]): Promise<void> {
  const a = parse(argv, { ...dataFlags, ...loopFlags, ...petFlags, pattern: { type: 'string' } })
  if (a.help) { console.log(usage); return }
  const out = new Output(a.json === true)
  const pattern = new Pattern(required(a, 'pattern'))
  const spec = verbalizerSpec(required(a, 'verbalizer'))
  const splits = readSplits(a, pattern.fields, required(a, 'train'))
  const loss = petLossFromFlags(a)
  const unlabeled = readUnlabeled(a, pattern.fields)
  const outDir = (a.out as string | undefined) ?? defaultOutDir('train')
  const opts = loopOptions(a, outDir, { kind: 'all' }, { lr: 1e-4, epochs: 30, batchSize: 16 })
  const result = await runPet({
    modelDir: (a.model as string | undefined) ?? defaultModelDir, load: loadFlags(a), pattern, verbalizer: spec,
    train: splits.train, dev: splits.dev, test: splits.test, unlabeled, loss, loop: opts, evalBatchSize: intFlag(a, 'eval-batch-size', 64)
  })
  const summary = {
    command: 'train',
    pattern: pattern.source,
    labeled: splits.train.length,
    unlabeled: unlabeled.length,
    label_loss: loss.labelLoss,
    mask_rate: loss.maskRate,
    epochs: opts.epochs,
    lr: opts.lr,
    batch_size: opts.batchSize,
    seed: opts.seed,
    best_epoch: result.bestEpoch,
    dev_accuracy: result.bestDev ?? null,
    test_accuracy: result.test ?? null,
    steps: result.steps,
    seconds: result.seconds,
    out: outDir,
    model: result.bestDir
  }
  writeReport(outDir, `pet train ${pattern.source}`, summary, result)
  out.line(`best epoch ${result.bestEpoch}: dev accuracy ${fmt(result.bestDev)}, test accuracy ${fmt(result.test)}  (${result.seconds.toFixed(0)} s; model in ${result.bestDir})`)
  out.summary(summary)
}

function fmt (x: number | undefined): string { return x === undefined ? '—' : x.toFixed(4) }
