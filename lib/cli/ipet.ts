import * as path from 'node:path'
import { writeFileAtomic } from '../atomic-write'
import type { Example } from '../data/examples'
import { PetError } from '../errors'
import { defaultModelDir } from '../model'
import { ensembleScores, toPredictions, type EnsembleMember } from '../pet/ensemble'
import { defaultIpetOptions, labelRatio, pickTeachers, selectPseudoLabeled } from '../pet/ipet'
import { Pattern } from '../pet/pattern'
import { runPet } from '../pet/run-pet'
import { accuracy } from '../pet/score'
import { Rng } from '../train/rng'
import { floatFlag, intFlag, Output, parse, UsageError } from './args'
import { dataFlags, dataUsage, defaultOutDir, loadFlags, loopFlags, loopOptions, readSplits } from './common'
import { petFlags, petLossFromFlags, petUsage, readUnlabeled, verbalizerSpec } from './pet-flags'

export const usage = `pet ipet --train FILE --unlabeled FILE --pattern P1 --pattern P2 ... --verbalizer JSON [options]
  iPET: generation 0 trains one PET model per pattern; each later generation retrains every pattern on the
  labeled set plus unlabeled examples labeled by a random share of the previous generation's other models,
  the set growing by --scale-factor per generation and keeping the labels' proportions. Reports the final
  generation's ensemble and writes its soft labels (for pet distill --soft-labels).
  [--generations 3] [--logits-share 0.25] [--scale-factor 5]
${petUsage}
${dataUsage}`

export async function run (argv: string[]): Promise<void> {
  const a = parse(argv, {
    ...dataFlags, ...loopFlags, ...petFlags, pattern: { type: 'string', multiple: true },
    generations: { type: 'string' }, 'logits-share': { type: 'string' }, 'scale-factor': { type: 'string' }
  })
  if (a.help) { console.log(usage); return }
  const out = new Output(a.json === true)
  const patterns = ((a.pattern as unknown as string[] | undefined) ?? []).map(p => new Pattern(p))
  if (patterns.length < 2) throw new UsageError('iPET needs at least two --pattern')
  if (typeof a.verbalizer !== 'string' || typeof a.train !== 'string') throw new UsageError('--train and --verbalizer are required')
  const spec = verbalizerSpec(a.verbalizer)
  const fields = patterns[0].fields
  const splits = readSplits(a, fields, a.train)
  const unlabeled = readUnlabeled(a, fields)
  if (unlabeled.length === 0) throw new UsageError('iPET needs --unlabeled data')
  const o = {
    generations: intFlag(a, 'generations', defaultIpetOptions.generations),
    logitsShare: floatFlag(a, 'logits-share', defaultIpetOptions.logitsShare),
    scaleFactor: floatFlag(a, 'scale-factor', defaultIpetOptions.scaleFactor)
  }
  if (!(o.logitsShare > 0 && o.logitsShare <= 1) || !(o.scaleFactor >= 1)) throw new PetError('--logits-share must be in (0, 1] and --scale-factor >= 1', 'EINVAL')
  const loss = petLossFromFlags(a)
  const load = loadFlags(a)
  const modelDir = (a.model as string | undefined) ?? defaultModelDir
  const outDir = (a.out as string | undefined) ?? defaultOutDir('ipet')
  const evalBatchSize = intFlag(a, 'eval-batch-size', 64)
  const seed = intFlag(a, 'seed', 42, 0)
  const rng = new Rng(seed ^ 0x1be7)
  const labels = Object.keys(spec)
  const labeledIdx = splits.train.map(e => {
    const i = e.label === undefined ? -1 : labels.indexOf(e.label)
    if (i < 0) throw new PetError(`${e.source}: unknown or missing label '${e.label}'`, 'EDATA')
    return i
  })
  const ratio = labelRatio(labeledIdx, labels.length)
  const eo = { verbalizer: spec, load, batchSize: evalBatchSize, maxLength: loss.maxLength, labelScores: loss.labelScores }

  let members: EnsembleMember[] = []
  const generations: Array<Record<string, unknown>> = []
  for (let g = 0; g < o.generations; g++) {
    const next: EnsembleMember[] = []
    const trained: Array<Record<string, unknown>> = []
    for (const [i, pattern] of patterns.entries()) {
      let train: Example[] = splits.train
      if (g > 0) {
        const teachers = pickTeachers(i, members.length, o.logitsShare, rng).map(j => members[j])
        const { scores } = await ensembleScores(teachers, unlabeled, eo)
        const target = Math.round(splits.train.length * Math.pow(o.scaleFactor, g))
        const chosen = selectPseudoLabeled(scores, ratio, Math.max(0, target - splits.train.length))
        train = [...splits.train, ...chosen.map(c => ({ ...unlabeled[c.index], label: labels[c.label] }))]
      }
      out.line(`generation ${g}, pattern ${i + 1}/${patterns.length} (${pattern.source}): ${train.length} training examples`)
      const r = await runPet({
        modelDir, load, pattern, verbalizer: spec, train, dev: splits.dev, test: splits.test, unlabeled: [], loss,
        loop: loopOptions(a, path.join(outDir, `g${g}`, `p${i + 1}`), { kind: 'all' }, { lr: 1e-4, epochs: 30, batchSize: 16 }),
        evalBatchSize
      })
      // The member's weight: its accuracy on the original labeled set (PET's wmean after training).
      const { scores } = await ensembleScores([{ dir: r.bestDir, pattern: pattern.source, weight: 1 }], splits.train, eo)
      const weight = accuracy(splits.train, toPredictions(labels, scores), labels).accuracy
      next.push({ dir: r.bestDir, pattern: pattern.source, weight })
      trained.push({ pattern: pattern.source, examples: train.length, dev_accuracy: r.bestDev ?? null, test_accuracy: r.test ?? null, weight })
    }
    members = next
    generations.push({ generation: g, models: trained })
  }
  const evaluate = async (examples?: readonly Example[]) => {
    if (!examples) return undefined
    const { scores } = await ensembleScores(members, examples, eo)
    return accuracy(examples, toPredictions(labels, scores), labels).accuracy
  }
  const dev = await evaluate(splits.dev)
  const test = await evaluate(splits.test)
  const { scores } = await ensembleScores(members, unlabeled, eo)
  const softLabels = path.join(outDir, 'soft-labels.jsonl')
  writeFileAtomic(softLabels, unlabeled.map((e, i) => JSON.stringify({ ...e.fields, logits: scores[i] })).join('\n') + '\n')
  const summary = { command: 'ipet', ...o, labels, generations, dev_accuracy: dev ?? null, test_accuracy: test ?? null, soft_labels: softLabels, out: outDir }
  writeFileAtomic(path.join(outDir, 'ipet.json'), JSON.stringify(summary, null, 2) + '\n')
  out.line(`iPET final ensemble: dev accuracy ${dev?.toFixed(4) ?? '—'}, test accuracy ${test?.toFixed(4) ?? '—'}; soft labels in ${softLabels}`)
  out.summary(summary)
}
