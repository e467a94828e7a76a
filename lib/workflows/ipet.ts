// ipet(): generations of PET models, each trained on the labeled set plus examples the previous generation
// labeled, as a library call.
import * as path from 'node:path'
import { writeFileAtomic } from '../atomic-write'
import { isWriter } from '../distributed/env'
import type { Example } from '../data/examples'
import { PetError } from '../errors'
import { ensembleAccuracy, ensembleScores, toPredictions, writeSoftLabels, type EnsembleMember } from '../pet/ensemble'
import { labelRatio, pickTeachers, selectPseudoLabeled } from '../pet/ipet'
import { runPet } from '../pet/run-pet'
import { accuracy } from '../pet/score'
import type { Control } from '../progress'
import { snakeKeys } from '../report/snake-keys'
import { workflows } from '../options'
import { Rng } from '../train/rng'
import { workflowOptions } from '../validate'
import {
  loopOptions, runDir,
  type DataOptions, type ModelOptions, type PetOptions, type Settled, type TrainingOptions, onWorkers,
  withModelFolder
} from './common'
import { memberSetup } from './ensemble'

/**
 * The options of ipet: train's, with two or more patterns, the number of generations, the teachers' share and the
 * training set's growth factor.
 */
export interface IpetOptions extends ModelOptions, DataOptions, TrainingOptions, PetOptions, Control {
  /** at least two patterns */
  patterns: string[]
  generations?: number
  /** share of the other models that label for each model (PET: 0.25; at least one) */
  logitsShare?: number
  /** the training set grows by this factor per generation (PET: 5) */
  scaleFactor?: number
}

/** One iPET generation: for each pattern its model, training set size, accuracies and ensemble weight. */
export interface IpetGeneration {
  generation: number
  models: Array<{ pattern: string, model: string, examples: number, devAccuracy: number | null, testAccuracy: number | null, weight: number }>
}

/**
 * What ipet returns (and writes to out/ipet.json): the generations, the final ensemble's accuracies and soft labels.
 */
export interface IpetResult {
  command: 'ipet'
  generations: IpetGeneration[]
  logitsShare: number
  scaleFactor: number
  labels: string[]
  /** the final generation's ensemble */
  devAccuracy: number | null
  testAccuracy: number | null
  /** the final ensemble's soft labels of the unlabeled examples (for distill's softLabels) */
  softLabels: string
  out: string
}

/**
 * Iterative PET: generation 0 trains one PET model per pattern on the labeled set; each later generation retrains
 * them on the labeled set plus unlabeled examples pseudo-labeled by a share of the previous generation's models (the
 * set growing by scaleFactor per generation). The last generation's ensemble scores dev and test and writes soft
 * labels for distill.
 */
export async function ipet (options: IpetOptions): Promise<IpetResult> {
  const o = await withModelFolder(workflowOptions<Settled<IpetOptions> & { generations: number, logitsShare: number, scaleFactor: number }>(workflows.ipet, options))
  const onWorkersResult = await onWorkers<IpetResult>('ipet', options, o)
  if (onWorkersResult !== undefined) return onWorkersResult
  if (o.patterns.length < 2) throw new PetError('iPET needs at least two patterns', 'EINVAL')
  const { patterns, verbalizer, splits, unlabeled, loss, load, modelDir, scoring: eo } = await memberSetup(o)
  const out = runDir(o, 'ipet')
  const rng = new Rng(o.seed ^ 0x1be7)
  const labels = Object.keys(verbalizer)
  const labeledIdx = splits.train.map(e => {
    const i = e.label === undefined ? -1 : labels.indexOf(e.label)
    if (i < 0) throw new PetError(`${e.source}: unknown or missing label '${e.label}'`, 'EDATA')
    return i
  })
  const ratio = labelRatio(labeledIdx, labels.length)

  let members: EnsembleMember[] = []
  const generations: IpetGeneration[] = []
  for (let g = 0; g < o.generations; g++) {
    const next: EnsembleMember[] = []
    const trained: IpetGeneration['models'] = []
    for (const [i, pattern] of patterns.entries()) {
      let train: Example[] = splits.train
      if (g > 0) {
        const teachers = pickTeachers(i, members.length, o.logitsShare, rng).map(j => members[j])
        const { scores } = await ensembleScores(teachers, unlabeled, eo)
        const target = Math.round(splits.train.length * o.scaleFactor ** g)
        const chosen = selectPseudoLabeled(scores, ratio, Math.max(0, target - splits.train.length))
        train = [...splits.train, ...chosen.map(c => ({ ...unlabeled[c.index], label: labels[c.label] }))]
      }
      o.onProgress?.({ kind: 'stage', message: `generation ${g}, pattern ${i + 1}/${patterns.length} (${pattern.source}): ${train.length} training examples` })
      const r = await runPet({
        modelDir, load, pattern, verbalizer, train, dev: splits.dev, test: splits.test, unlabeled: [], loss,
        loop: loopOptions(o, path.join(out, `g${g}`, `p${i + 1}`), { kind: 'all' }), evalBatchSize: o.evalBatchSize
      })
      // The member's weight: its accuracy on the original labeled set (PET's wmean after training).
      const { scores } = await ensembleScores([{ dir: r.bestDir, pattern: pattern.source, weight: 1 }], splits.train, eo)
      const weight = accuracy(splits.train, toPredictions(labels, scores), labels).accuracy
      next.push({ dir: r.bestDir, pattern: pattern.source, weight })
      trained.push({ pattern: pattern.source, model: r.bestDir, examples: train.length, devAccuracy: r.bestDev ?? null, testAccuracy: r.test ?? null, weight })
    }
    members = next
    generations.push({ generation: g, models: trained })
  }
  const dev = await ensembleAccuracy(members, splits.dev, eo)
  const test = await ensembleAccuracy(members, splits.test, eo)
  const { scores } = await ensembleScores(members, unlabeled, eo)
  const softLabels = path.join(out, 'soft-labels.jsonl')
  if (isWriter()) writeSoftLabels(softLabels, unlabeled, scores)
  const result: IpetResult = {
    command: 'ipet', generations, logitsShare: o.logitsShare, scaleFactor: o.scaleFactor, labels, devAccuracy: dev, testAccuracy: test, softLabels, out
  }
  if (isWriter()) writeFileAtomic(path.join(out, 'ipet.json'), JSON.stringify(snakeKeys(result), null, 2) + '\n')
  return result
}
