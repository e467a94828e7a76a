// ensemble(): one PET model per pattern, their label scores combined with weights, soft labels for the
// unlabeled data — as a library call; distill() builds on it.
import * as path from 'node:path'
import { writeFileAtomic } from '../atomic-write'
import { isWriter } from '../distributed/env'
import { joinGroup } from '../distributed/group'
import type { Example } from '../data/examples'
import { PetError } from '../errors'
import { ensembleAccuracy, ensembleScores, toPredictions, writeSoftLabels, type EnsembleMember, type EnsembleOptions as EnsembleScoring } from '../pet/ensemble'
import { Pattern } from '../pet/pattern'
import { runPet } from '../pet/run-pet'
import { accuracy } from '../pet/score'
import type { Control } from '../progress'
import { snakeKeys } from '../report/snake-keys'
import { workflows } from '../options'
import { workflowOptions } from '../validate'
import {
  loadOptionsOf, loopOptions, modelDirOf, petLoss, readSplits, readUnlabeled, runDir,
  type DataOptions, type ModelOptions, type PetOptions, type Settled, type TrainingOptions, onWorkers,
  withModelFolder
} from './common'

/** The options of ensemble: train's, with several patterns, the members' weighting, optionally trained members. */
export interface EnsembleOptions extends ModelOptions, DataOptions, TrainingOptions, PetOptions, Control {
  /** one PET model per pattern */
  patterns: string | string[]
  /** wmean (PET: each pattern's accuracy on the labeled set before training) or uniform */
  weighting?: 'wmean' | 'uniform'
  /** already trained members, in pattern order (no training then) */
  models?: string[]
}

/** One member of an ensemble: its pattern, model directory, weight and own accuracies (null where not measured). */
export interface EnsembleMemberResult {
  pattern: string
  model: string
  weight: number
  devAccuracy: number | null
  testAccuracy: number | null
}

/** What ensemble returns (and writes to out/ensemble.json): the members, the ensemble's accuracies, the soft labels. */
export interface EnsembleResult {
  command: 'ensemble'
  weighting: 'wmean' | 'uniform'
  patterns: EnsembleMemberResult[]
  labels: string[]
  labeled: number
  unlabeled: number
  devAccuracy: number | null
  testAccuracy: number | null
  /** soft-labels.jsonl (the unlabeled examples with the ensemble's label scores), or null without unlabeled data */
  softLabels: string | null
  out: string
}

/** What distill() takes from the ensemble besides its result. */
export interface EnsembleRun {
  result: EnsembleResult
  fields: string[]
  unlabeled: Example[]
  unlabeledScores?: number[][]
}

/**
 * One PET model per pattern (trained here, or given as `models`), their label scores combined with weights (wmean:
 * each pattern's accuracy on the training set before training); scores dev and test, and writes soft labels for the
 * unlabeled examples, which distill trains a classifier on.
 */
export async function ensemble (options: EnsembleOptions): Promise<EnsembleResult> {
  const o = await withModelFolder(workflowOptions<Settled<EnsembleOptions> & { weighting: 'wmean' | 'uniform', patterns: string[] }>(workflows.ensemble, options))
  const onWorkersResult = await onWorkers<EnsembleResult>('ensemble', options, o)
  if (onWorkersResult !== undefined) return onWorkersResult
  return (await runEnsemble(o, runDir(o, 'ensemble'))).result
}

/**
 * What ensemble and iPET share before their members train: the patterns (reading the same fields), the splits and
 * unlabeled data, PET's loss, and how members score. A worker of a distributed run joins its group here: members
 * train data-parallel (runTraining) and every scoring pass is sharded.
 */
export async function memberSetup (o: Settled<EnsembleOptions> & { patterns: string[] }) {
  const patterns = o.patterns.map(p => new Pattern(p))
  const fields = patterns[0].fields
  if (patterns.some(p => p.fields.join() !== fields.join())) throw new PetError('all patterns must read the same fields', 'EPATTERN')
  const verbalizer = o.verbalizer!
  const splits = readSplits(o, fields)
  const unlabeled = readUnlabeled(o, fields)
  const loss = petLoss(o)
  const load = loadOptionsOf(o)
  const shard = await joinGroup(o.distTimeout)
  const scoring: EnsembleScoring = { verbalizer, load, batchSize: o.evalBatchSize, maxLength: loss.maxLength, labelScores: loss.labelScores, signal: o.signal, shard }
  return { patterns, fields, verbalizer, splits, unlabeled, loss, load, modelDir: modelDirOf(o), scoring }
}

/**
 * ensemble() on settled options, writing into `out`; also returns what distill takes next (the text fields, the
 * unlabeled examples and their scores).
 */
export async function runEnsemble (o: Settled<EnsembleOptions> & { weighting: 'wmean' | 'uniform', patterns: string[] }, out: string): Promise<EnsembleRun> {
  if (o.models !== undefined && o.models.length !== o.patterns.length) {
    throw new PetError(`models names ${o.models.length} directories for ${o.patterns.length} patterns`, 'EINVAL')
  }
  const { patterns, fields, verbalizer, splits, unlabeled, loss, load, modelDir, scoring: eo } = await memberSetup(o)

  const members: EnsembleMember[] = []
  const perPattern: EnsembleMemberResult[] = []
  for (const [i, pattern] of patterns.entries()) {
    let dir = o.models?.[i]
    let dev: number | undefined
    let test: number | undefined
    if (dir === undefined) {
      o.onProgress?.({ kind: 'stage', message: `pattern ${i + 1}/${patterns.length}: ${pattern.source}` })
      const r = await runPet({
        modelDir, load, pattern, verbalizer, train: splits.train, dev: splits.dev, test: splits.test, unlabeled: [],
        loss, loop: loopOptions(o, path.join(out, `pattern-${i + 1}`), { kind: 'all' }), evalBatchSize: o.evalBatchSize
      })
      dir = r.bestDir
      dev = r.bestDev
      test = r.test
    }
    let weight = 1
    if (o.weighting === 'wmean') {
      // PET's weight: the untrained model's accuracy with this pattern on the labeled training set.
      const { labels, scores } = await ensembleScores([{ dir: modelDir, pattern: pattern.source, weight: 1 }], splits.train, eo)
      weight = accuracy(splits.train, toPredictions(labels, scores), labels).accuracy
    }
    members.push({ dir, pattern: pattern.source, weight })
    perPattern.push({ pattern: pattern.source, model: dir, weight, devAccuracy: dev ?? null, testAccuracy: test ?? null })
  }
  const dev = await ensembleAccuracy(members, splits.dev, eo)
  const test = await ensembleAccuracy(members, splits.test, eo)
  let softLabels: string | null = null
  let labels: string[] = Object.keys(verbalizer)
  let unlabeledScores: number[][] | undefined
  if (unlabeled.length > 0) {
    o.onProgress?.({ kind: 'stage', message: `soft labels for ${unlabeled.length} unlabeled examples` })
    const r = await ensembleScores(members, unlabeled, eo)
    labels = r.labels
    unlabeledScores = r.scores
    softLabels = path.join(out, 'soft-labels.jsonl')
    if (isWriter()) writeSoftLabels(softLabels, unlabeled, r.scores)
  }
  const result: EnsembleResult = {
    command: 'ensemble', weighting: o.weighting, patterns: perPattern, labels, labeled: splits.train.length, unlabeled: unlabeled.length,
    devAccuracy: dev, testAccuracy: test, softLabels, out
  }
  if (isWriter()) writeFileAtomic(path.join(out, 'ensemble.json'), JSON.stringify(snakeKeys(result), null, 2) + '\n')
  return { result, fields: [...fields], unlabeled, unlabeledScores }
}
