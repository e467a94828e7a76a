import { PetError } from '../errors'
import { defaultModelDir, MaskedLM } from '../model'
import { classifierAccuracy, classifierSteps, encodePlain, testClassifier } from '../pet/classifier'
import { writeTask } from '../pet/task'
import type { Example } from '../data/examples'
import { runTraining } from '../train/loop'
import { intFlag, Output, parse, required } from './args'
import { dataFlags, dataUsage, loadFlags, defaultOutDir, loopFlags, loopOptions, readSplits, writeReport } from './common'

export const usage = `pet finetune --train FILE [--labels '["negative","positive"]'] [--fields text] [options]
  The baseline: a plain sequence classifier ([CLS] + linear head on the same encoder) trained on the labels.
${dataUsage}
  With --json the last stdout line is {"dev_accuracy":…, "test_accuracy":…, …}.`

export async function run (argv: string[]): Promise<void> {
  const a = parse(argv, { ...dataFlags, ...loopFlags, labels: { type: 'string' }, fields: { type: 'string' }, pattern: { type: 'string' }, verbalizer: { type: 'string' } })
  if (a.help) { console.log(usage); return }
  const out = new Output(a.json === true)
  const fields = ((a.fields as string | undefined) ?? 'text').split(',')
  const splits = readSplits(a, fields, required(a, 'train'))
  const labels = labelList(a, splits.train)
  const maxLength = intFlag(a, 'max-length', 128, 3)
  const evalBatch = intFlag(a, 'eval-batch-size', 64)
  const outDir = (a.out as string | undefined) ?? defaultOutDir('finetune')
  const modelDir = (a.model as string | undefined) ?? defaultModelDir
  const loadOpts = loadFlags(a)
  const opts = loopOptions(a, outDir, { kind: 'all' }, { lr: 1e-4, epochs: 30, batchSize: 16 })

  const result = await runTraining(async dir => {
    const model = await MaskedLM.load(dir ?? modelDir, loadOpts)
    model.core.addClassifier(labels.length, opts.seed)
    return model
  }, await (async () => {
    const probe = await MaskedLM.load(modelDir, loadOpts)
    try {
      const items = splits.train.map(e => ({ input: encodePlain(probe, e, fields, maxLength), label: labelIndex(labels, e) }))
      const devInputs = splits.dev?.map(e => encodePlain(probe, e, fields, maxLength))
      return {
        ...classifierSteps(probe, items, labels.length, 1),
        evaluate: splits.dev ? (model: MaskedLM) => classifierAccuracy(model, labels, splits.dev!, devInputs!, evalBatch) : undefined,
        describe: (dir: string) => writeTask(dir, { mode: 'classifier', labels, maxLength, fields })
      }
    } finally {
      probe.dispose()
    }
  })(), opts)
  result.model.dispose()
  const test = splits.test ? await testClassifier(result.bestDir, loadOpts, labels, splits.test, fields, maxLength, evalBatch) : undefined
  const summary = {
    command: 'finetune', labeled: splits.train.length, labels, epochs: opts.epochs, lr: opts.lr, batch_size: opts.batchSize, seed: opts.seed,
    best_epoch: result.bestEpoch, dev_accuracy: result.bestDev ?? null, test_accuracy: test ?? null,
    steps: result.steps, seconds: result.seconds, out: outDir, model: result.bestDir
  }
  writeReport(outDir, 'pet finetune', summary, result)
  out.line(`best epoch ${result.bestEpoch}: dev accuracy ${result.bestDev?.toFixed(4) ?? '—'}, test accuracy ${test?.toFixed(4) ?? '—'}  (${result.seconds.toFixed(0)} s; model in ${result.bestDir})`)
  out.summary(summary)
}

/** The label order: --labels, else the verbalizer's, else the sorted labels of the training set. */
export function labelList (a: Record<string, unknown>, train: readonly Example[]): string[] {
  if (typeof a.labels === 'string') {
    let l: unknown
    try { l = JSON.parse(a.labels) } catch { throw new PetError('--labels must be a JSON list of label names', 'EINVAL') }
    if (!Array.isArray(l) || l.length < 2 || !l.every(x => typeof x === 'string')) throw new PetError('--labels must be a JSON list of at least two label names', 'EINVAL')
    return l as string[]
  }
  if (typeof a.verbalizer === 'string') return Object.keys(JSON.parse(a.verbalizer) as object)
  const seen = [...new Set(train.map(e => e.label).filter((x): x is string => x !== undefined))].sort()
  if (seen.length < 2) throw new PetError('the training set has fewer than two labels; give --labels', 'EDATA')
  return seen
}

function labelIndex (labels: readonly string[], e: Example): number {
  if (e.label === undefined) throw new PetError(`${e.source}: a training example has no label`, 'EDATA')
  const i = labels.indexOf(e.label)
  if (i < 0) throw new PetError(`${e.source}: unknown label '${e.label}' (labels: ${labels.join(', ')})`, 'EDATA')
  return i
}
