import * as path from 'node:path'
import { toExamples, type Example } from '../data/examples'
import { readJsonl } from '../data/jsonl'
import { PetError } from '../errors'
import { defaultModelDir, MaskedLM } from '../model'
import { classifierAccuracy, classifierSteps, encodePlain, testClassifier } from '../pet/classifier'
import { writeTask } from '../pet/task'
import { runTraining } from '../train/loop'
import { floatFlag, intFlag, Output, parse } from './args'
import { defaultOutDir, loadFlags, loopOptions, readSplits, writeReport } from './common'
import { ensembleFlags, runEnsemble, usage as ensembleUsage } from './ensemble'

export const usage = `pet distill [ensemble options] --unlabeled FILE [--temperature 2] [--distill-epochs 3] [--distill-lr 5e-5]
       pet distill --soft-labels FILE --labels JSON [--fields text] --train FILE ... (reuse an ensemble's soft labels)
  Runs pet ensemble (below) to label --unlabeled softly, then trains a plain [CLS] classifier on those soft labels
  with the KL divergence at temperature T, scaled by T^2 as in PET; reports its dev/test accuracy.

${ensembleUsage}`

export async function run (argv: string[]): Promise<void> {
  const a = parse(argv, {
    ...ensembleFlags, 'soft-labels': { type: 'string' }, labels: { type: 'string' }, fields: { type: 'string' },
    temperature: { type: 'string' }, 'distill-epochs': { type: 'string' }, 'distill-lr': { type: 'string' }
  })
  if (a.help) { console.log(usage); return }
  const out = new Output(a.json === true)
  const outDir = (a.out as string | undefined) ?? defaultOutDir('distill')
  const T = floatFlag(a, 'temperature', 2)
  if (!(T > 0)) throw new PetError('--temperature must be > 0', 'EINVAL')

  let labels: string[]
  let fields: string[]
  let soft: Array<{ example: Example, logits: number[] }>
  let ensembleSummary: Record<string, unknown> | undefined
  if (typeof a['soft-labels'] === 'string') {
    if (typeof a.labels !== 'string') throw new PetError('--soft-labels needs --labels (the label order of the logits)', 'EINVAL')
    labels = JSON.parse(a.labels) as string[]
    fields = ((a.fields as string | undefined) ?? 'text').split(',')
    const file = a['soft-labels']
    const records = readJsonl(file)
    const examples = toExamples(records, fields, file)
    soft = records.map((r, i) => {
      const logits = (r.value as { logits?: unknown }).logits
      if (!Array.isArray(logits) || logits.length !== labels.length || !logits.every(x => typeof x === 'number')) {
        throw new PetError(`${file}:${r.line}: "logits" must be ${labels.length} numbers`, 'EDATA')
      }
      return { example: examples[i], logits: logits as number[] }
    })
  } else {
    const r = await runEnsemble(a, out, path.join(outDir, 'ensemble'))
    if (!r.unlabeledScores) throw new PetError('distillation needs --unlabeled data to label', 'EINVAL')
    labels = r.labels
    fields = r.fields
    soft = r.unlabeled.map((e, i) => ({ example: e, logits: r.unlabeledScores![i] }))
    ensembleSummary = r.summary
  }
  if (soft.length === 0) throw new PetError('no soft-labeled examples to distil from', 'EDATA')
  const values = a as Record<string, string | boolean | undefined>
  const splits = typeof a.train === 'string' ? readSplits(values, fields, a.train) : { train: [], dev: undefined, test: undefined }
  const load = loadFlags(values)
  const modelDir = (a.model as string | undefined) ?? defaultModelDir
  const maxLength = intFlag(values, 'max-length', 128, 3)
  const evalBatch = intFlag(values, 'eval-batch-size', 64)
  const opts = loopOptions({ ...values, epochs: a['distill-epochs'] as string | undefined, lr: a['distill-lr'] as string | undefined },
    path.join(outDir, 'student'), { kind: 'all' }, { lr: 5e-5, epochs: 3, batchSize: 16 })

  const probe = await MaskedLM.load(modelDir, load)
  let task
  try {
    const items = soft.map(s => ({ input: encodePlain(probe, s.example, fields, maxLength), teacher: s.logits }))
    const devInputs = splits.dev?.map(e => encodePlain(probe, e, fields, maxLength))
    task = {
      ...classifierSteps(probe, items, labels.length, T),
      evaluate: splits.dev ? (m: MaskedLM) => classifierAccuracy(m, labels, splits.dev!, devInputs!, evalBatch) : undefined,
      describe: (dir: string) => writeTask(dir, { mode: 'classifier' as const, labels, maxLength, fields })
    }
  } finally {
    probe.dispose()
  }
  const result = await runTraining(async dir => {
    const m = await MaskedLM.load(dir ?? modelDir, load)
    m.core.addClassifier(labels.length, opts.seed)
    return m
  }, task, opts)
  result.model.dispose()
  const test = splits.test ? await testClassifier(result.bestDir, load, labels, splits.test, fields, maxLength, evalBatch) : undefined
  const summary = {
    command: 'distill', temperature: T, soft_labeled: soft.length, labels, epochs: opts.epochs, lr: opts.lr, seed: opts.seed,
    best_epoch: result.bestEpoch, dev_accuracy: result.bestDev ?? null, test_accuracy: test ?? null,
    ensemble_dev_accuracy: ensembleSummary?.dev_accuracy ?? null, ensemble_test_accuracy: ensembleSummary?.test_accuracy ?? null,
    seconds: result.seconds, out: outDir, model: result.bestDir
  }
  writeReport(outDir, 'pet distill', summary, result)
  out.line(`distilled classifier, best epoch ${result.bestEpoch}: dev accuracy ${result.bestDev?.toFixed(4) ?? '—'}, test accuracy ${test?.toFixed(4) ?? '—'}  (model in ${result.bestDir})`)
  out.summary(summary)
}
