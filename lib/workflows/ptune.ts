// ptune(): P-tuning — a prompt of [unusedN] tokens learned around the [MASK] — as a library call. Frozen (few
// labels): only the prompt's rows (or a prompt encoder) learn and the result is a small adapter; full: everything.
import * as path from 'node:path'
import type { NativeTrainable } from '../../bindings'
import { PetError } from '../errors'
import { MaskedLM } from '../model'
import { Pattern } from '../pet/pattern'
import { evaluatePet, scoreFinal, type FinalScores } from '../pet/run-pet'
import { writeTask } from '../pet/task'
import { defaultMaskRate, petSteps, type PetLossOptions } from '../pet/train'
import { Verbalizer } from '../pet/verbalizer'
import type { Control } from '../progress'
import { baseFingerprint, loadAdapter, saveAdapter } from '../ptuning/adapter'
import { PROMPT_TOKEN_RE, promptInitValues, promptPattern, promptRows, type PromptLayout } from '../ptuning/prompt'
import { writeReport } from '../report/run-report'
import { workflows } from '../options'
import { runTraining } from '../train/loop'
import { workflowOptions } from '../validate'
import {
  loadOptionsOf, loopOptions, modelDirOf, petLoss, readSplits, readUnlabeled, runDir,
  type DataOptions, type ModelOptions, type PetOptions, type RunResult, type Settled, type TrainingOptions, onWorkers,
  withModelFolder
} from './common'

/**
 * The options of ptune: train's, with the prompt (its tokens, layout, encoder, initialisation), the mode, and the
 * auxiliary MLM loss.
 */
export interface PtuneOptions extends ModelOptions, DataOptions, TrainingOptions, PetOptions, Control {
  /** a pattern with [unusedN] prompt tokens (default: generated from promptTokens and layout) */
  pattern?: string
  promptTokens?: number
  layout?: PromptLayout
  /** frozen (default; few labels): only the prompt learns; full: every weight trains */
  mode?: 'frozen' | 'full'
  encoder?: 'none' | 'lstm' | 'mlp'
  /** the prompt encoder's learning rate (default: lr) */
  promptLr?: number
  /** start the raw prompt rows from the embeddings of this text's tokens (encoder 'none') */
  promptInit?: string
  /** weight of the auxiliary MLM loss (0: off) */
  auxMlmWeight?: number
  /** recompute activations in backward: default 'on' for frozen, 'off' for full */
  recompute?: 'on' | 'off'
}

/** What ptune returns: the run's outcome, the prompt's settings and, when frozen, the adapter's folder. */
export interface PtuneResult extends RunResult {
  command: 'ptune'
  mode: 'frozen' | 'full'
  encoder: 'none' | 'lstm' | 'mlp'
  pattern: string
  promptTokens: number
  labeled: number
  epochs: number
  lr: number
  promptLr: number
  promptInit: string | null
  auxMlmWeight: number
  seed: number
  /** frozen: the adapter folder (out/best/adapter), which plugs onto `model` (the base); full: null */
  adapter: string | null
}

type Settings = Settled<PtuneOptions> & Required<Pick<PtuneOptions, 'promptTokens' | 'layout' | 'mode' | 'encoder' | 'auxMlmWeight'>>

/**
 * P-tuning: a prompt of [unusedN] tokens (or a prompt encoder) learned around the [MASK]. Frozen (the default) trains
 * only the prompt and saves it as a small adapter (out/best/adapter) for the unchanged base model; full trains every
 * weight and saves the model.
 */
export async function ptune (options: PtuneOptions): Promise<PtuneResult> {
  const o = await withModelFolder(workflowOptions<Settings>(workflows.ptune, options))
  const onWorkersResult = await onWorkers<PtuneResult>('ptune', options, o)
  if (onWorkersResult !== undefined) return onWorkersResult
  const { mode, encoder } = o
  // Frozen: raw rows at 3e-3 (measured on sentiment, 168 labels, 30 epochs: 6e-4 — the seed's — 73.5 % test, 3e-3 76.1 %).
  o.lr ??= mode === 'frozen' ? 3e-3 : 1e-4
  o.weightDecay ??= mode === 'frozen' ? 0 : 0.01
  if (o.promptInit !== undefined && encoder !== 'none') throw new PetError('promptInit sets raw prompt rows: use it with encoder none', 'EINVAL')
  const load = loadOptionsOf(o)
  const modelDir = modelDirOf(o)
  const probe = await MaskedLM.load(modelDir, load)
  const task = readPromptTask(o, probe)
  const out = runDir(o, 'ptune')
  const prompt = promptOnBase(o, probe, task)
  const { pattern, splits, loss } = task
  const { verbalizer, rows, initValues } = prompt
  const { trainRows, tied, trainable } = promptTrainable(o, prompt)
  const loop = loopOptions(o as Settled<PtuneOptions> & { lr: number, weightDecay: number }, out, trainable)
  // Frozen: only the prompt learns, so activations are recomputed in backward instead of kept (less memory).
  loop.recompute = (o.recompute ?? (mode === 'frozen' ? 'on' : 'off')) === 'on'
  const adapterFields = adapterConfig(o, modelDir, task, prompt, trainRows, tied)

  // A fresh start (no checkpoint dir) gets the promptInit rows; a resumed run has its trained ones. Frozen
  // checkpoints hold only the adapter (the rest is the base model): its rows go back onto the base, and a prompt
  // encoder comes back with the optimizer state (trainer.pt).
  const loadModel = async (dir?: string) => {
    const m = await MaskedLM.load(mode === 'frozen' ? modelDir : dir ?? modelDir, load)
    try {
      if (dir === undefined && initValues) m.setEmbeddingRows(Int32Array.from(rows), initValues)
      if (dir !== undefined && mode === 'frozen' && tied) loadAdapter(m, path.join(dir, 'adapter'))
    } catch (err) {
      m.dispose()
      throw err
    }
    return m
  }
  const r = await runTraining(loadModel, {
    items: prompt.steps.items,
    buildStep: (items, rng) => prompt.steps.buildStep(items, rng),
    evaluate: splits.dev ? (m, shard) => evaluatePet(m, pattern, verbalizer, splits.dev!, { evalBatchSize: o.evalBatchSize, loss }, shard) : undefined,
    describe: (dir) => {
      if (mode === 'full') writeTask(dir, { mode: 'pet', labels: [...verbalizer.labels], pattern: pattern.source, verbalizer: verbalizer.toJSON(), labelScores: loss.labelScores, maxLength: loss.maxLength, fields: [...pattern.fields] })
    },
    saveWeights: mode === 'frozen' ? (dir, model) => saveAdapter(path.join(dir, 'adapter'), model, adapterFields) : undefined
  }, loop)
  const adapterDir = mode === 'frozen' ? path.join(r.bestDir, 'adapter') : null
  let final: FinalScores = {}
  if (splits.test !== undefined || splits.dev !== undefined) {
    // Frozen: the adapter on the unchanged base model, as a user would load it; full: the saved model.
    const m = await MaskedLM.load(adapterDir !== null ? modelDir : r.bestDir, load)
    try {
      if (adapterDir !== null) loadAdapter(m, adapterDir)
      final = await scoreFinal(m, pattern, verbalizer, splits, { evalBatchSize: o.evalBatchSize, loss, loop })
    } finally { m.dispose() }
  }
  const { test, breakdown } = final
  const summary = {
    command: 'ptune' as const, mode, encoder, pattern: pattern.source, promptTokens: rows.length, labeled: splits.train.length,
    epochs: o.epochs, lr: o.lr, promptLr: o.promptLr || o.lr, promptInit: o.promptInit ?? null, auxMlmWeight: o.auxMlmWeight, seed: o.seed,
    bestEpoch: r.bestEpoch, devAccuracy: r.bestDev ?? null, testAccuracy: test ?? null, steps: r.steps, seconds: r.seconds,
    out, model: adapterDir !== null ? modelDir : r.bestDir, adapter: adapterDir
  }
  const report = await writeReport(out, `pet ptune (${mode}) ${pattern.source}`, summary, r.history, r.bestEpoch, breakdown)
  return { ...summary, history: r.history, labelBreakdown: breakdown ?? null, report }
}

/** The pattern (given, or the prompt layout's), the data read with its fields, and the loss. */
interface PromptTask {
  pattern: Pattern
  splits: ReturnType<typeof readSplits>
  unlabeled: ReturnType<typeof readUnlabeled>
  loss: PetLossOptions
}

/** The task as the base model (probe) sees it; the probe is disposed if reading fails. */
function readPromptTask (o: Settings, probe: MaskedLM): PromptTask {
  // A causal LM: the prompt goes around the text, the answer last; its loss (labelLoss 'vocab') is the LM loss
  // over the whole sequence, and the auxiliary loss (auxMlmWeight) is that LM loss beside PET's label loss.
  const causal = probe.isCausal
  let pattern: Pattern
  let splits: ReturnType<typeof readSplits>
  let unlabeled: ReturnType<typeof readUnlabeled>
  try {
    pattern = new Pattern(o.pattern ?? promptPattern(o.promptTokens, o.layout, 1, causal))
    splits = readSplits(o, pattern.fields)
    unlabeled = readUnlabeled(o, pattern.fields)
  } catch (err) {
    probe.dispose()
    throw err
  }
  o.maskRate ??= o.auxMlmWeight > 0 && !causal ? defaultMaskRate : 0
  const loss = petLoss(o)
  if (o.auxMlmWeight > 0) { loss.labelLoss = 'verbalizer'; loss.alpha = 1 / (1 + o.auxMlmWeight) }
  return { pattern, splits, unlabeled, loss }
}

/** What the prompt takes from the base model: the verbalizer, the encoded steps, the prompt's rows and their start. */
interface PromptOnBase {
  verbalizer: Verbalizer
  steps: ReturnType<typeof petSteps>
  /** the embedding rows of the pattern's [unusedN] tokens */
  rows: number[]
  fingerprint: string
  family: MaskedLM['family']
  /** promptInit's token embeddings for the rows */
  initValues?: Float32Array
}

/** Everything ptune needs of the base model before training, read from the probe, which is then disposed. */
function promptOnBase (o: Settings, probe: MaskedLM, task: PromptTask): PromptOnBase {
  const family = probe.family
  let verbalizer: Verbalizer
  let steps: ReturnType<typeof petSteps>
  let rows: number[]
  let fingerprint: string
  let initValues: Float32Array | undefined
  try {
    verbalizer = new Verbalizer(o.verbalizer!, probe.tokenizer, task.pattern)
    steps = petSteps(probe, task.pattern, verbalizer, task.splits.train, task.unlabeled, task.loss)
    rows = promptRows(task.pattern, probe.tokenizer)
    fingerprint = baseFingerprint(probe)
    if (o.promptInit !== undefined) initValues = promptInitValues(probe, o.promptInit, rows)
  } finally {
    probe.dispose()
  }
  if (rows.length === 0) throw new PetError('the pattern has no [unusedN] prompt tokens', 'EPATTERN')
  return { verbalizer, steps, rows, fingerprint, family, initValues }
}

/**
 * What trains: frozen, the prompt's rows (with the learned [unusedN] label words' rows when tied) or a prompt encoder;
 * full, every weight, with the prompt encoder if there is one.
 */
function promptTrainable (o: Settings, prompt: PromptOnBase): { trainRows: number[], tied: boolean, trainable: NativeTrainable } {
  const { rows, verbalizer } = prompt
  const { mode, encoder } = o
  // Learned verbalizer targets ([unusedN] words) train with the prompt rows (their output side is tied).
  const unusedTargets = [...new Set(verbalizer.words.flat().filter(w => PROMPT_TOKEN_RE.test(w.text)).flatMap(w => w.ids).filter(id => !rows.includes(id)))]
  const tied = encoder === 'none'
  const trainRows = tied ? [...rows, ...unusedTargets] : rows
  const promptLr = o.promptLr ?? 0
  const trainable: NativeTrainable = mode === 'frozen'
    ? { kind: 'rows', rows: Int32Array.from(trainRows), ...(encoder !== 'none' ? { encoder, promptLr } : {}) }
    : { kind: 'all', ...(encoder !== 'none' ? { encoder, promptRows: Int32Array.from(rows), promptLr } : {}) }
  return { trainRows, tied, trainable }
}

/** The adapter_config.json fields a frozen run's checkpoints carry: the base model, the prompt, how labels score. */
function adapterConfig (o: Settings, modelDir: string, task: PromptTask, prompt: PromptOnBase, trainRows: number[], tied: boolean) {
  const { pattern, loss } = task
  const { encoder } = o
  return {
    encoder_reparameterization_type: (encoder === 'none' ? 'NONE' : encoder.toUpperCase()) as 'NONE' | 'LSTM' | 'MLP',
    base_model_name_or_path: modelDir,
    base_model_fingerprint: prompt.fingerprint,
    base_model_family: prompt.family,
    prompt_rows: trainRows,
    tied,
    pattern: pattern.source,
    verbalizer: prompt.verbalizer.toJSON(),
    labels: [...prompt.verbalizer.labels],
    label_scores: loss.labelScores,
    max_length: loss.maxLength,
    fields: [...pattern.fields]
  }
}
