// What the training workflows share: the model to load, the splits read with the task's fields, the loop's
// settings from the options, the run directory.
import * as path from 'node:path'
import { distEnv } from '../distributed/env'
import { defaultDistTimeout } from '../distributed/group'
import { launchWorkers } from '../distributed/launch'
import { PetError } from '../errors'
import { resolveModel } from '../hub'
import { fieldMap, loadExamples, type DataInput, type Example } from '../data/examples'
import { defaultModelDir, type LoadOptions } from '../model'
import type { Precision } from '../options'
import type { LabelScoreOptions } from '../pet/label-scores'
import type { PetLossOptions } from '../pet/train'
import type { VerbalizerSpec } from '../pet/verbalizer'
import type { Control } from '../progress'
import type { EpochRecord, LoopOptions } from '../train/loop'
import type { LabelBreakdown } from '../report/per-label'
import type { NativeTrainable } from '../../bindings'

/** Which model, on what. */
export interface ModelOptions {
  /**
   * model directory (HF layout), or a hub name org/name: from the HF cache, else downloaded into it (resolveModel
   * for a progress callback); default: the bundled zh-mini-mlm
   */
  model?: string
  /** the hub revision of a `model` given as org/name: a branch, tag or commit hash (default 'main'; a folder ignores it) */
  revision?: string
  /** 'cpu' (default), 'cuda', 'cuda:N' */
  device?: string
  /** intra-op threads; default: all cores (or PET_MLM_THREADS) */
  threads?: number
  /** 'fp32' (default) or 'bf16' GEMMs, for scoring and training */
  precision?: Precision
}

/** Labeled splits, as JSONL paths or records in memory, and how to read them. */
export interface DataOptions {
  train?: DataInput
  dev?: DataInput
  test?: DataInput
  /** record key of the text for a one-field pattern (default 'text', falling back to FewCLUE's 'sentence') */
  textField?: string
  /** record key of the label (default 'label') */
  labelField?: string
  /** raw label -> label name (e.g. TNEWS codes -> Chinese names), or the path of a JSON file holding that object */
  labelMap?: Record<string, string> | string
  /** use only the first N training examples */
  limitTrain?: number
  /** tokens per input at most (default 128) */
  maxLength?: number
  /** run directory (default runs/<command>-<time>) */
  out?: string
}

/** The training loop's settings (defaults: the option table in options.ts). */
export interface TrainingOptions {
  epochs?: number
  lr?: number
  batchSize?: number
  evalBatchSize?: number
  weightDecay?: number
  /** share of the steps with linear warm-up */
  warmup?: number
  maxGradNorm?: number
  seed?: number
  /** stop after N epochs without a better dev accuracy (0: off) */
  patience?: number
  /** continue the interrupted run in `out` */
  resume?: boolean
  /**
   * data parallelism: start this many local worker processes (default 1), each training on its share of every
   * batch with the gradients all-reduced (c10d, Gloo); the result is rank 0's. For several machines, start one
   * process per worker with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set instead.
   */
  nproc?: number
  /** seconds a worker waits for the others (rendezvous, each all-reduce) before it fails (default 300) */
  distTimeout?: number
}

/** PET's options. */
export interface PetOptions {
  /** label -> word(s), e.g. { positive: ['很'], negative: ['不'] } */
  verbalizer?: VerbalizerSpec
  maskRate?: number
  labelLoss?: 'vocab' | 'verbalizer'
  alpha?: number
  /** unlabeled examples (semi-supervised; soft labels for distillation) */
  unlabeled?: DataInput
  unlabeledRatio?: number
  manyToOne?: LabelScoreOptions['manyToOne']
  multiToken?: LabelScoreOptions['multiToken']
  /** causal LMs: score the word ('word') or the word and the rest of the pattern ('word+suffix') */
  continuation?: LabelScoreOptions['continuation']
}

/** Options with the table's defaults filled in (workflowOptions). */
export type Settled<T> = T & Required<Pick<T, Extract<keyof T, 'device' | 'textField' | 'labelField' | 'maxLength' |
  'epochs' | 'lr' | 'batchSize' | 'evalBatchSize' | 'weightDecay' | 'warmup' | 'maxGradNorm' | 'seed' | 'patience' |
  'resume' | 'nproc' | 'distTimeout' | 'maskRate' | 'labelLoss' | 'alpha' | 'unlabeledRatio' | 'manyToOne' | 'multiToken'>>>

/** What every training workflow returns besides its own figures. */
export interface RunResult {
  /** the epoch kept in `model` (best dev accuracy, else the last) */
  bestEpoch: number
  devAccuracy: number | null
  testAccuracy: number | null
  steps: number
  seconds: number
  /** the run directory */
  out: string
  /** the saved model directory (out/best) */
  model: string
  /** one record per epoch: train loss, dev accuracy, seconds */
  history: EpochRecord[]
  /** the best model's accuracy per label and its most confused pairs, on test (else dev); null without either */
  labelBreakdown: LabelBreakdown | null
  /** report.json, report.md and the chart (report.svg) in the run directory */
  report: { json: string, md: string, chart: string }
}

export const modelDirOf = (o: ModelOptions): string => path.resolve(o.model ?? defaultModelDir)

/**
 * The validated options with `model` as a folder: a hub name (org/name) becomes its snapshot at `revision` in the HF
 * cache, downloaded when missing (resolveModel), each file's bytes reported as 'download' events and the download
 * stopped by the call's signal. Once per call, before workers start, so that they share one download.
 */
export async function withModelFolder<T extends { model?: string, revision?: string } & Control> (o: T): Promise<T> {
  if (o.model === undefined) return o
  const onProgress = o.onProgress
  const model = await resolveModel(o.model, {
    revision: o.revision,
    signal: o.signal,
    onProgress: onProgress === undefined ? undefined : e => onProgress({ kind: 'download', ...e })
  })
  return { ...o, model }
}

/** A worker of a distributed run given 'cuda' takes the GPU of its LOCAL_RANK, as torchrun-launched scripts do. */
export function deviceOf (device: string | undefined): string | undefined {
  const dist = distEnv()
  return device === 'cuda' && dist !== undefined ? `cuda:${dist.localRank}` : device
}

export const loadOptionsOf = (o: ModelOptions): Partial<LoadOptions> => ({ device: deviceOf(o.device), threads: o.threads, precision: o.precision })

export interface Splits { train: Example[], dev?: Example[], test?: Example[] }

/** train/dev/test read with the task's fields and the label field; `limitTrain` cuts the training set. */
export function readSplits (o: Settled<DataOptions>, fields: readonly string[]): Splits {
  const map = fieldMap(fields, o)
  const read = (input: DataInput | undefined, what: string) => input === undefined ? undefined : loadExamples(input, fields, map, what)
  let train = read(o.train, 'train') ?? []
  if (o.limitTrain !== undefined) train = train.slice(0, o.limitTrain)
  return { train, dev: read(o.dev, 'dev'), test: read(o.test, 'test') }
}

/** Unlabeled examples with the task's fields (labels, if any, are ignored). */
export function readUnlabeled (o: Settled<DataOptions> & PetOptions, fields: readonly string[]): Example[] {
  if (o.unlabeled === undefined) return []
  return loadExamples(o.unlabeled, fields, { ...fieldMap(fields, o), labelField: undefined }, 'unlabeled')
}

export function petLoss (o: Settled<PetOptions & DataOptions>): PetLossOptions {
  return {
    labelLoss: o.labelLoss,
    alpha: o.alpha,
    maskRate: o.maskRate,
    unlabeledRatio: o.unlabeledRatio,
    labelScores: { manyToOne: o.manyToOne, multiToken: o.multiToken, score: 'logit', continuation: o.continuation },
    maxLength: o.maxLength
  }
}

export function loopOptions (o: Settled<TrainingOptions> & Control, outDir: string, trainable: NativeTrainable): LoopOptions {
  return {
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    weightDecay: o.weightDecay,
    warmupRatio: o.warmup,
    maxGradNorm: o.maxGradNorm,
    seed: o.seed,
    patience: o.patience,
    outDir,
    resume: o.resume,
    distTimeout: o.distTimeout,
    trainable,
    signal: o.signal,
    onProgress: o.onProgress
  }
}

export function runDir (o: { out?: string }, command: string): string {
  if (o.out !== undefined) return path.resolve(o.out)
  const dist = distEnv()
  if (dist !== undefined) {
    throw new PetError(`${command}: a distributed worker (RANK ${dist.rank} of WORLD_SIZE ${dist.worldSize}) needs --out: ` +
      'every worker must name the same run directory', 'EINVAL')
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19)
  return path.resolve('runs', `${command}-${stamp}`)
}

/**
 * With nproc > 1, runs the workflow on that many local workers (lib/dist/launch.ts) and returns rank 0's result;
 * otherwise undefined, and the caller runs it here (alone, or as one worker of a distributed run).
 */
export async function onWorkers<R> (workflow: string, options: object, o: { nproc?: number, distTimeout?: number, out?: string, model?: string },
  outIsRunDir = true): Promise<R | undefined> {
  if (o.nproc === undefined || o.nproc <= 1) return undefined
  // A training run's directory is settled here, so that every worker names the same one; an output file (zero-shot's
  // predictions) passes through as given.
  const out = outIsRunDir ? runDir(o, workflow) : o.out
  // the workers get the model folder the parent resolved (withModelFolder), not the hub name again
  const given = o.model === undefined ? options : { ...options, model: o.model }
  return await launchWorkers<R>(workflow, given as Record<string, unknown>, { nproc: o.nproc, distTimeout: o.distTimeout ?? defaultDistTimeout, out })
}
