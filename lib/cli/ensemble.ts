import * as path from 'node:path'
import { writeFileAtomic } from '../atomic-write'
import type { Example } from '../data/examples'
import { PetError } from '../errors'
import { defaultModelDir } from '../model'
import { ensembleScores, toPredictions, type EnsembleMember } from '../pet/ensemble'
import { Pattern } from '../pet/pattern'
import { runPet } from '../pet/run-pet'
import { accuracy } from '../pet/score'
import { intFlag, Output, parse, choice, UsageError } from './args'
import { dataFlags, dataUsage, defaultOutDir, loadFlags, loopFlags, loopOptions, readSplits } from './common'
import { petFlags, petLossFromFlags, petUsage, readUnlabeled, verbalizerSpec } from './pet-flags'

export const usage = `pet ensemble --train FILE --pattern P1 --pattern P2 ... --verbalizer JSON [--unlabeled FILE] [options]
  Trains one PET model per pattern (or takes --models DIR,DIR,... already trained, in pattern order), combines
  their label scores with weights — wmean (PET's default: each pattern's accuracy on the labeled set before
  training) or uniform — reports the ensemble's dev/test accuracy and writes soft labels for --unlabeled
  (soft-labels.jsonl in --out) for pet distill.
  [--weighting wmean|uniform] [--models DIRS]
${petUsage}
${dataUsage}`

export const ensembleFlags = { ...dataFlags, ...loopFlags, ...petFlags, pattern: { type: 'string' as const, multiple: true }, weighting: { type: 'string' as const }, models: { type: 'string' as const } }

export interface EnsembleRun {
  summary: Record<string, unknown>
  softLabels?: string
  labels: string[]
  fields: string[]
  unlabeled: Example[]
  unlabeledScores?: number[][]
}

export async function runEnsemble (a: Record<string, unknown>, out: Output, outDir: string): Promise<EnsembleRun> {
  const patterns = ((a.pattern as string[] | undefined) ?? []).map(p => new Pattern(p))
  if (patterns.length === 0) throw new UsageError('give at least one --pattern')
  const fields = patterns[0].fields
  if (patterns.some(p => p.fields.join() !== fields.join())) throw new PetError('all patterns must read the same fields', 'EPATTERN')
  if (typeof a.verbalizer !== 'string') throw new UsageError('--verbalizer is required')
  if (typeof a.train !== 'string') throw new UsageError('--train is required')
  const spec = verbalizerSpec(a.verbalizer)
  const values = a as Record<string, string | boolean | undefined>
  const splits = readSplits(values, fields, a.train)
  const loss = petLossFromFlags(values)
  const unlabeled = readUnlabeled(values, fields)
  const load = loadFlags(values)
  const modelDir = (a.model as string | undefined) ?? defaultModelDir
  const evalBatchSize = intFlag(values, 'eval-batch-size', 64)
  const weighting = choice(values, 'weighting', ['wmean', 'uniform'] as const, 'wmean')
  const given = typeof a.models === 'string' ? a.models.split(',') : undefined
  if (given && given.length !== patterns.length) throw new UsageError(`--models names ${given.length} directories for ${patterns.length} patterns`)
  const eo = { verbalizer: spec, load, batchSize: evalBatchSize, maxLength: loss.maxLength, labelScores: loss.labelScores }

  const members: EnsembleMember[] = []
  const perPattern: Array<Record<string, unknown>> = []
  for (const [i, pattern] of patterns.entries()) {
    let dir = given?.[i]
    let dev: number | undefined
    let test: number | undefined
    if (!dir) {
      out.line(`pattern ${i + 1}/${patterns.length}: ${pattern.source}`)
      const r = await runPet({
        modelDir, load, pattern, verbalizer: spec, train: splits.train, dev: splits.dev, test: splits.test, unlabeled: [],
        loss, loop: loopOptions(values, path.join(outDir, `pattern-${i + 1}`), { kind: 'all' }, { lr: 1e-4, epochs: 30, batchSize: 16 }), evalBatchSize
      })
      dir = r.bestDir
      dev = r.bestDev
      test = r.test
    }
    let weight = 1
    if (weighting === 'wmean') {
      // PET's weight: the untrained model's accuracy with this pattern on the labeled training set.
      const { labels, scores } = await ensembleScores([{ dir: modelDir, pattern: pattern.source, weight: 1 }], splits.train, eo)
      weight = accuracy(splits.train, toPredictions(labels, scores), labels).accuracy
    }
    members.push({ dir, pattern: pattern.source, weight })
    perPattern.push({ pattern: pattern.source, model: dir, weight, dev_accuracy: dev ?? null, test_accuracy: test ?? null })
  }
  const evaluate = async (examples?: readonly Example[]) => {
    if (!examples) return undefined
    const { labels, scores } = await ensembleScores(members, examples, eo)
    return accuracy(examples, toPredictions(labels, scores), labels).accuracy
  }
  const dev = await evaluate(splits.dev)
  const test = await evaluate(splits.test)
  let softLabels: string | undefined
  let labels: string[] = Object.keys(spec)
  let unlabeledScores: number[][] | undefined
  if (unlabeled.length > 0) {
    const r = await ensembleScores(members, unlabeled, eo)
    labels = r.labels
    unlabeledScores = r.scores
    softLabels = path.join(outDir, 'soft-labels.jsonl')
    writeFileAtomic(softLabels, unlabeled.map((e, i) => JSON.stringify({ ...e.fields, logits: r.scores[i] })).join('\n') + '\n')
  }
  const summary = {
    command: 'ensemble', weighting, patterns: perPattern, labels, labeled: splits.train.length, unlabeled: unlabeled.length,
    dev_accuracy: dev ?? null, test_accuracy: test ?? null, soft_labels: softLabels ?? null, out: outDir
  }
  writeFileAtomic(path.join(outDir, 'ensemble.json'), JSON.stringify(summary, null, 2) + '\n')
  return { summary, softLabels, labels, fields: [...fields], unlabeled, unlabeledScores }
}

export async function run (argv: string[]): Promise<void> {
  const a = parse(argv, ensembleFlags)
  if (a.help) { console.log(usage); return }
  const out = new Output(a.json === true)
  const outDir = (a.out as string | undefined) ?? defaultOutDir('ensemble')
  const r = await runEnsemble(a, out, outDir)
  out.line(`ensemble of ${(r.summary.patterns as unknown[]).length}: dev accuracy ${fmt(r.summary.dev_accuracy)}, test accuracy ${fmt(r.summary.test_accuracy)}` +
    (r.softLabels ? `; soft labels in ${r.softLabels}` : ''))
  out.summary(r.summary)
}

function fmt (x: unknown): string { return typeof x === 'number' ? x.toFixed(4) : '—' }
