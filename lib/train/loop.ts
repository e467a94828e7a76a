// The training loop shared by PET, the classifier baseline and distillation: seeded shuffling, native steps,
// evaluation on a dev set each epoch, the best checkpoint kept atomically, early stopping, resume.
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { NativeBatch, NativeLoss, NativeStepResult, NativeTrainable } from '../../bindings'
import { nativeError, PetError } from '../errors'
import type { MaskedLM } from '../model'
import { joinGroup, shareOf, type DistGroup } from '../distributed/group'
import type { ScoreShard } from '../pet/score'
import { abortError, type Control } from '../progress'
import { readJson, resolveCheckpoint, saveDirAtomic, writeJson } from './checkpoint'
import { Rng } from './rng'

/**
 * The training loop's settings: epochs, batch size, optimizer and schedule, seed, early stopping, the run directory and
 * resuming, what trains.
 */
export interface LoopOptions extends Control {
  epochs: number
  batchSize: number
  lr: number
  weightDecay: number
  /** share of the steps used for linear warm-up; the learning rate then decays linearly to 0 */
  warmupRatio: number
  maxGradNorm: number
  seed: number
  /** stop after this many epochs without a better dev score (0: never) */
  patience: number
  /** run directory: best/ (best dev score), last/ + state.json (for resuming), history */
  outDir: string
  resume: boolean
  trainable: NativeTrainable
  /** recompute activations in backward (less memory, more compute) */
  recompute?: boolean
  /** distributed runs (RANK, WORLD_SIZE, … set): seconds any rank waits for the others before failing */
  distTimeout?: number
}

/** One epoch of a training run's `history`: its mean training loss, dev accuracy (with a dev set) and duration. */
export interface EpochRecord {
  epoch: number
  loss: number
  dev?: number
  seconds: number
}

/** What a training run returns: the best epoch and its dev score and directory, the history, steps and time. */
export interface LoopResult {
  /** distributed runs: the number of workers and the mean all-reduce time per step (ms) */
  workers?: number
  allreduceMs?: number
  bestEpoch: number
  bestDev?: number
  history: EpochRecord[]
  bestDir: string
  steps: number
  seconds: number
  resumedFrom?: number
}

/**
 * What a workflow gives the loop: its encoded items, how to build a step from a batch of them, how to score dev, and
 * what to save beside the weights.
 */
export interface LoopTask<T> {
  /** the labeled training items (encoded once) */
  items: readonly T[]
  /** one native step's inputs for these items */
  buildStep (items: readonly T[], rng: Rng): { batch: NativeBatch, loss: NativeLoss }
  /** dev score (accuracy), or undefined without a dev set; in a distributed run `shard` lets each rank score a share */
  evaluate?: (model: MaskedLM, shard?: ScoreShard) => Promise<number>
  /** files beside the weights so that the checkpoint can predict (pet.json) */
  describe (dir: string, model: MaskedLM): void | Promise<void>
  /** what a checkpoint keeps of the model; default the whole model. Frozen P-tuning keeps only its adapter. */
  saveWeights?: (dir: string, model: MaskedLM) => Promise<void>
}

interface LoopState {
  /** finished epochs */
  epoch: number
  steps: number
  /** a run stopped inside an epoch (aborted): that epoch's order, the steps of it done, their loss sum */
  partial?: { order: number[], step: number, lossSum: number }
  rng: number
  bestEpoch: number
  bestDev?: number
  history: EpochRecord[]
  seconds: number
}

/**
 * `open(dir)` loads the model to train: the base model (dir undefined) or, when resuming, the weights of the last
 * checkpoint; it also adds any head the task needs. The loop disposes it. An aborted run (o.signal) saves last/
 * at the step it reached, and rejects with a PetError EABORT; `resume` continues it to the same result.
 */
export async function runTraining<T> (open: (resumeDir?: string) => Promise<MaskedLM>, task: LoopTask<T>,
  o: LoopOptions): Promise<LoopResult> {
  if (task.items.length === 0) throw new PetError('the labeled training set is empty', 'EDATA')
  fs.mkdirSync(o.outDir, { recursive: true })
  const lastDir = path.join(o.outDir, 'last')
  const rng = new Rng(o.seed)
  let state: LoopState = { epoch: 0, steps: 0, rng: rng.seedState, bestEpoch: 0, history: [], seconds: 0 }
  let resumedFrom: number | undefined

  let resumeDir: string | undefined
  const donePath = path.join(o.outDir, 'done.json')
  if (o.resume) {
    // A run that finished (an ensemble's or iPET's earlier member, say) has nothing left to train: its result stands.
    const done = readJson<LoopResult>(donePath)
    if (done !== undefined) return { ...done, resumedFrom: done.history.at(-1)?.epoch ?? 0 }
    const last = resolveCheckpoint(lastDir, 'state.json')
    const saved = last ? readJson<LoopState>(path.join(last, 'state.json')) : undefined
    if (saved && last) {
      state = saved
      resumedFrom = saved.epoch
      rng.seedState = saved.rng
      resumeDir = last
    }
  }
  // A distributed run: every rank runs this same loop on the same data from the same seed (so the same order),
  // each steps on its share of every global batch, and rank 0 alone writes the run directory. The files rank 0
  // writes are read by all (resume, the best checkpoint): one machine, or a shared filesystem.
  const dist = await joinGroup(o.distTimeout)
  // a new run in a used directory: an earlier run's result is no longer this directory's
  if (!o.resume && (dist?.rank ?? 0) === 0) fs.rmSync(donePath, { force: true })
  const model = await open(resumeDir)
  try {
    return await loop(model, task, o, state, rng, resumedFrom, dist)
  } finally {
    model.dispose()
  }
}

/** What the steps of one training run share: the model and task, the settings, the loop's state, where it writes. */
interface Run<T> {
  model: MaskedLM
  task: LoopTask<T>
  o: LoopOptions
  state: LoopState
  rng: Rng
  dist: DistGroup | undefined
  /** rank 0, or the only process: it alone writes the run directory and reports progress */
  writer: boolean
  bestDir: string
  lastDir: string
  stepsPerEpoch: number
  totalSteps: number
  saveWeights: (dir: string, model: MaskedLM) => Promise<void>
  /** when the run started, less the seconds of the runs it resumes */
  t0: number
  /** distributed: the all-reduce time summed over the steps taken, and their number */
  allreduceMs: number
  distSteps: number
}

async function loop<T> (model: MaskedLM, task: LoopTask<T>, o: LoopOptions, state: LoopState, rng: Rng,
  resumedFrom: number | undefined, dist: DistGroup | undefined): Promise<LoopResult> {
  const stepsPerEpoch = Math.ceil(task.items.length / o.batchSize)
  const run: Run<T> = {
    model,
    task,
    o,
    state,
    rng,
    dist,
    writer: (dist?.rank ?? 0) === 0,
    bestDir: path.join(o.outDir, 'best'),
    lastDir: path.join(o.outDir, 'last'),
    stepsPerEpoch,
    totalSteps: stepsPerEpoch * o.epochs,
    saveWeights: task.saveWeights ?? ((dir: string, m: MaskedLM) => m.save(dir)),
    t0: 0,
    allreduceMs: 0,
    distSteps: 0
  }
  await setUpTrainer(run, resumedFrom)
  run.t0 = Date.now() - state.seconds * 1000
  for (let epoch = state.epoch + 1; epoch <= o.epochs; epoch++) {
    const e0 = Date.now()
    const lossSum = await trainEpoch(run, epoch)
    await endEpoch(run, epoch, lossSum, e0)
    if (o.patience > 0 && epoch - state.bestEpoch >= o.patience) break
  }
  return await finish(run, resumedFrom)
}

/** The model's trainer: what trains and how (optimizer, schedule, seed), and, resuming, the trainer state of last/. */
async function setUpTrainer<T> (run: Run<T>, resumedFrom: number | undefined): Promise<void> {
  const { model, o, state, dist } = run
  // setTrainable compares the model and the settings across the ranks, synchronously: wait for every rank here first
  // (asynchronously), so that the comparison finds them all there and the event loop is not held while one loads.
  await dist?.barrier()
  try {
    model.setTrainable(o.trainable, {
      lr: o.lr,
      weightDecay: o.weightDecay,
      warmupSteps: Math.round(o.warmupRatio * run.totalSteps),
      totalSteps: run.totalSteps,
      maxGradNorm: o.maxGradNorm,
      seed: o.seed,
      initialStep: state.steps,
      recompute: o.recompute === true,
      distributed: dist !== undefined
    })
    const last = resolveCheckpoint(run.lastDir, 'state.json')
    if (resumedFrom !== undefined && last) await model.loadTrainerState(path.join(last, 'trainer.pt'))
  } catch (err) {
    throw nativeError(err)
  }
}

/**
 * What resuming needs, swapped in as one directory (last/): the weights, the optimizer's moments and RNG, the loop's
 * counters and RNG (and, inside an epoch, that epoch's order).
 */
async function saveLast<T> (run: Run<T>): Promise<void> {
  if (!run.writer) return
  await saveDirAtomic(run.lastDir, async tmp => {
    await run.saveWeights(tmp, run.model)
    await run.model.saveTrainerState(path.join(tmp, 'trainer.pt'))
    writeJson(path.join(tmp, 'state.json'), run.state)
  })
}

/**
 * The steps of one epoch, from where an aborted run stopped inside it if it did; returns the sum of their losses. An
 * abort (o.signal) saves last/ at the step reached and throws EABORT.
 */
async function trainEpoch<T> (run: Run<T>, epoch: number): Promise<number> {
  const { o, state, rng, task } = run
  const partial = state.partial
  state.partial = undefined
  const order = partial?.order ?? rng.shuffle(task.items.map((_, i) => i))
  // Distributed: the random choices inside a step (masking) come from a generator per step and rank, derived
  // from the state after the shuffle, so the main generator (the next epoch's order) stays the same on all ranks.
  const epochSeed = rng.seedState
  let lossSum = partial?.lossSum ?? 0
  for (let s = partial?.step ?? 0; s < run.stepsPerEpoch; s++) {
    const items = order.slice(s * o.batchSize, (s + 1) * o.batchSize).map(i => task.items[i])
    const r = await takeStep(run, items, s, epochSeed, `epoch ${epoch}, step ${s + 1}`)
    if (r === undefined) throw await stopAt(run, epoch, { order, step: s, lossSum })
    lossSum += r.loss
    state.steps++
    if (run.writer) o.onProgress?.({ kind: 'train', done: state.steps, total: run.totalSteps, epoch, epochs: o.epochs, loss: r.loss })
  }
  return lossSum
}

/**
 * One step on these items: the model's, or in a distributed run this rank's share of the global batch (step `s` of
 * the epoch). Undefined: the run is to stop here (o.signal; every rank stops at the same step).
 */
async function takeStep<T> (run: Run<T>, items: T[], s: number, epochSeed: number, context: string): Promise<NativeStepResult | undefined> {
  const { model, task, o, rng, dist } = run
  if (dist === undefined) {
    if (o.signal?.aborted === true) return undefined
    const { batch, loss } = task.buildStep(items, rng)
    return await model.trainStep(batch, loss, context)
  }
  // The stop request travels with the step's first all-reduce: all ranks stop at the same step.
  const mine = shareOf(items, dist.rank, dist.worldSize)
  const stepRng = new Rng((epochSeed ^ Math.imul(s + 1, 0x85ebca6b) ^ Math.imul(dist.rank + 1, 0x9e3779b1)) >>> 0)
  const built = mine.length > 0 ? task.buildStep(mine, stepRng) : undefined
  const r = await model.trainShare(built?.batch ?? null, built?.loss ?? null, o.signal?.aborted === true, context)
  if (r.stopped) return undefined
  run.allreduceMs += r.allreduceMs
  run.distSteps++
  return r
}

/** Stops inside an epoch: last/ saved at this step (with the epoch's order and loss so far); the EABORT error. */
async function stopAt<T> (run: Run<T>, epoch: number, partial: NonNullable<LoopState['partial']>): Promise<PetError> {
  run.state.partial = partial
  run.state.rng = run.rng.seedState
  run.state.seconds = (Date.now() - run.t0) / 1000
  await saveLast(run)
  await run.dist?.barrier()
  return abortError(`training (${run.o.outDir}, epoch ${epoch}, step ${partial.step + 1} of ${run.stepsPerEpoch}; resume continues it)`)
}

/**
 * The end of an epoch: its record (mean loss, dev score), best/ when the dev score is better, last/ for resuming,
 * the history; then every rank waits for rank 0's files.
 */
async function endEpoch<T> (run: Run<T>, epoch: number, lossSum: number, e0: number): Promise<void> {
  const { model, task, o, state, rng, dist, writer } = run
  const record: EpochRecord = { epoch, loss: lossSum / run.stepsPerEpoch, seconds: (Date.now() - e0) / 1000 }
  if (task.evaluate) record.dev = await task.evaluate(model, dist)
  state.history.push(record)
  const better = task.evaluate ? record.dev! > (state.bestDev ?? -Infinity) : true
  if (better) {
    state.bestEpoch = epoch
    state.bestDev = record.dev
    if (writer) await saveDirAtomic(run.bestDir, async tmp => { await run.saveWeights(tmp, model); await task.describe(tmp, model) })
  }
  state.epoch = epoch
  state.rng = rng.seedState
  state.seconds = (Date.now() - run.t0) / 1000
  if (writer) o.onProgress?.({ kind: 'epoch', epoch, epochs: o.epochs, loss: record.loss, dev: record.dev, best: better })
  if (epoch < o.epochs) await saveLast(run)
  if (writer) writeJson(path.join(o.outDir, 'history.json'), state.history)
  // Every rank waits for rank 0's files of this epoch (best/, last/) before going on.
  await dist?.barrier()
}

/**
 * A finished run: its result. It leaves best/, the history and the result (done.json: resume returns it); the resume
 * files are no longer needed.
 */
async function finish<T> (run: Run<T>, resumedFrom: number | undefined): Promise<LoopResult> {
  const { state, dist } = run
  const result: LoopResult = {
    ...(dist !== undefined ? { workers: dist.worldSize, allreduceMs: run.distSteps > 0 ? run.allreduceMs / run.distSteps : 0 } : {}),
    bestEpoch: state.bestEpoch,
    bestDev: state.bestDev,
    history: state.history,
    bestDir: run.bestDir,
    steps: state.steps,
    seconds: (Date.now() - run.t0) / 1000,
    resumedFrom
  }
  if (run.writer) {
    writeJson(path.join(run.o.outDir, 'done.json'), result)
    fs.rmSync(run.lastDir, { recursive: true, force: true })
    fs.rmSync(`${run.lastDir}.old`, { recursive: true, force: true })
  }
  await dist?.barrier()
  return result
}
