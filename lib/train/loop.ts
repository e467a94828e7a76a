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

async function loop<T> (model: MaskedLM, task: LoopTask<T>, o: LoopOptions, state: LoopState, rng: Rng,
  resumedFrom: number | undefined, dist: DistGroup | undefined): Promise<LoopResult> {
  const writer = (dist?.rank ?? 0) === 0
  let allreduceMs = 0
  let distSteps = 0
  const bestDir = path.join(o.outDir, 'best')
  const lastDir = path.join(o.outDir, 'last')
  const stepsPerEpoch = Math.ceil(task.items.length / o.batchSize)
  const totalSteps = stepsPerEpoch * o.epochs
  const saveWeights = task.saveWeights ?? ((dir: string, m: MaskedLM) => m.save(dir))
  // setTrainable compares the model and the settings across the ranks, synchronously: wait for every rank here first
  // (asynchronously), so that the comparison finds them all there and the event loop is not held while one loads.
  await dist?.barrier()
  try {
    model.setTrainable(o.trainable, {
      lr: o.lr,
      weightDecay: o.weightDecay,
      warmupSteps: Math.round(o.warmupRatio * totalSteps),
      totalSteps,
      maxGradNorm: o.maxGradNorm,
      seed: o.seed,
      initialStep: state.steps,
      recompute: o.recompute === true,
      distributed: dist !== undefined
    })
    const last = resolveCheckpoint(lastDir, 'state.json')
    if (resumedFrom !== undefined && last) await model.loadTrainerState(path.join(last, 'trainer.pt'))
  } catch (err) {
    throw nativeError(err)
  }

  const t0 = Date.now() - state.seconds * 1000
  // What resuming needs, swapped in as one directory: the weights, the optimizer's moments and RNG, the loop's
  // counters and RNG (and, inside an epoch, that epoch's order).
  const saveLast = async () => {
    if (writer) {
      await saveDirAtomic(lastDir, async tmp => {
        await saveWeights(tmp, model)
        await model.saveTrainerState(path.join(tmp, 'trainer.pt'))
        writeJson(path.join(tmp, 'state.json'), state)
      })
    }
  }
  for (let epoch = state.epoch + 1; epoch <= o.epochs; epoch++) {
    const e0 = Date.now()
    const partial = state.partial
    state.partial = undefined
    const order = partial?.order ?? rng.shuffle(task.items.map((_, i) => i))
    // Distributed: the random choices inside a step (masking) come from a generator per step and rank, derived
    // from the state after the shuffle, so the main generator (the next epoch's order) stays the same on all ranks.
    const epochSeed = rng.seedState
    let lossSum = partial?.lossSum ?? 0
    for (let s = partial?.step ?? 0; s < stepsPerEpoch; s++) {
      const stopHere = async () => {
        state.partial = { order, step: s, lossSum }
        state.rng = rng.seedState
        state.seconds = (Date.now() - t0) / 1000
        await saveLast()
        await dist?.barrier()
        return abortError(`training (${o.outDir}, epoch ${epoch}, step ${s + 1} of ${stepsPerEpoch}; resume continues it)`)
      }
      const items = order.slice(s * o.batchSize, (s + 1) * o.batchSize).map(i => task.items[i])
      const context = `epoch ${epoch}, step ${s + 1}`
      let r: NativeStepResult
      if (dist === undefined) {
        if (o.signal?.aborted === true) throw await stopHere()
        const { batch, loss } = task.buildStep(items, rng)
        r = await model.trainStep(batch, loss, context)
      } else {
        // The stop request travels with the step's first all-reduce: all ranks stop at the same step.
        const mine = shareOf(items, dist.rank, dist.worldSize)
        const stepRng = new Rng((epochSeed ^ Math.imul(s + 1, 0x85ebca6b) ^ Math.imul(dist.rank + 1, 0x9e3779b1)) >>> 0)
        const built = mine.length > 0 ? task.buildStep(mine, stepRng) : undefined
        r = await model.trainShare(built?.batch ?? null, built?.loss ?? null, o.signal?.aborted === true, context)
        if (r.stopped) throw await stopHere()
        allreduceMs += r.allreduceMs
        distSteps++
      }
      lossSum += r.loss
      state.steps++
      if (writer) o.onProgress?.({ kind: 'train', done: state.steps, total: totalSteps, epoch, epochs: o.epochs, loss: r.loss })
    }
    const record: EpochRecord = { epoch, loss: lossSum / stepsPerEpoch, seconds: (Date.now() - e0) / 1000 }
    if (task.evaluate) record.dev = await task.evaluate(model, dist)
    state.history.push(record)
    const better = task.evaluate ? record.dev! > (state.bestDev ?? -Infinity) : true
    if (better) {
      state.bestEpoch = epoch
      state.bestDev = record.dev
      if (writer) await saveDirAtomic(bestDir, async tmp => { await saveWeights(tmp, model); await task.describe(tmp, model) })
    }
    state.epoch = epoch
    state.rng = rng.seedState
    state.seconds = (Date.now() - t0) / 1000
    if (writer) o.onProgress?.({ kind: 'epoch', epoch, epochs: o.epochs, loss: record.loss, dev: record.dev, best: better })
    if (epoch < o.epochs) await saveLast()
    if (writer) writeJson(path.join(o.outDir, 'history.json'), state.history)
    // Every rank waits for rank 0's files of this epoch (best/, last/) before going on.
    await dist?.barrier()
    if (o.patience > 0 && epoch - state.bestEpoch >= o.patience) break
  }
  const result: LoopResult = {
    ...(dist !== undefined ? { workers: dist.worldSize, allreduceMs: distSteps > 0 ? allreduceMs / distSteps : 0 } : {}),
    bestEpoch: state.bestEpoch,
    bestDev: state.bestDev,
    history: state.history,
    bestDir,
    steps: state.steps,
    seconds: (Date.now() - t0) / 1000,
    resumedFrom
  }
  // A finished run leaves best/, the history and its result (done.json: resume returns it); the resume files are no
  // longer needed.
  if (writer) {
    writeJson(path.join(o.outDir, 'done.json'), result)
    fs.rmSync(lastDir, { recursive: true, force: true })
    fs.rmSync(`${lastDir}.old`, { recursive: true, force: true })
  }
  await dist?.barrier()
  return result
}
