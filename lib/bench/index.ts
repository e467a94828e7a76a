// `pet bench`: zero-shot scoring throughput and latency of ours (fp32 and bf16) vs transformers.js on the same padded
// batches, PET training steps/s per precision, and peak RSS; every figure as min / median / max over runs. The CPU's
// ISA and its GEMM rate per precision (measured at start) put the executed GFLOP/s in proportion. Each run of each side is a
// fresh child process (see jobs.ts); runs of the sides alternate so that background load falls on both.
import type { BatchOrder, InputSpec } from './inputs'
import type { NativeKernels } from '../advanced'
import type { BatchSizeResult, GemmRunResult, GptLabelsResult, GptScoreResult, ScoreRunResult, TrainRunResult } from './jobs'
import { load1, machineInfo, type MachineInfo } from './machine'
import { spread, type Spread } from './stats'
import { runJob } from './worker'
import { optionTable, type Precision, type Schedule } from '../options'

/** The training jobs' seed: the workflows' default (the options table's), as `pet train` would draw. */
const defaultSeed = optionTable.seed.default as number

export interface BenchOptions {
  data: string
  limit?: number
  model: string
  peerModel: string
  pattern: string
  verbalizer: string
  batchSizes: number[]
  runs: number
  maxLength: number
  order: BatchOrder
  warmupBatches: number
  peer: boolean
  train: boolean
  trainBatchSize: number
  trainSteps: number
  threads?: number
  /** our scoring: the model's schedule load option ('plain': one plain forward pass, for comparison) */
  schedule: Schedule
  /** our scoring and the GEMM probe: the model's kernels load option (default: the build's) */
  kernels?: NativeKernels
  /** a causal LM (GPT-2) benched beside the masked LM: its directory and its pattern (the verbalizer is shared) */
  gptModel?: string
  gptPattern: string
  onProgress?: (message: string) => void
}

/** The causal LM's figures, per precision: scoring sentences/s per batch size (min / median / max over runs). */
export interface GptSide {
  by_batch_size: Array<{ batch_size: number, sentences_per_s: Spread, p50_ms: Spread, accuracy: number | null }>
  best_batch_size: number
  best_sentences_per_s: number
  peak_rss_mb: Spread
}

export interface GptReport {
  model: string
  pattern: string
  fp32: GptSide
  bf16: GptSide
  /** share of the labels equal between fp32 and bf16 at their best batch sizes (first run) */
  bf16_label_agreement: number
  training: TrainReport | null
  training_bf16: TrainReport | null
  /** fp32, one run: the one-pass scoring with 2, 15 and 120 labels */
  labels: GptLabelsResult
}

export interface SideBatchSize {
  batch_size: number
  batches: number
  sentences_per_s: Spread
  p50_ms: Spread
  p95_ms: Spread
  accuracy: number | null
  correct: number
  labeled: number
  /** padded tokens / real tokens - 1 */
  padding_waste: number
  /** encoder multiply-add GFLOP of one pass over the padded batches, and the rate over the whole pass */
  encoder_gflop: number
  encoder_gflop_per_s: Spread
  /** the FLOPs this side actually computes (ours: last layer at the [MASK] rows only) and their rate */
  executed_gflop: number
  executed_gflop_per_s: Spread
  /** the median executed GFLOP/s as a share of the CPU's GEMM rate in this precision (null: not measured) */
  gemm_share: number | null
  /** seconds per pass (median over runs): building batches in JS, the model call (N-API + native), reading results */
  split_s: { prep: number, call: number, post: number }
}

export interface SideReport {
  n: number
  runs: number
  by_batch_size: SideBatchSize[]
  best_batch_size: number
  best_sentences_per_s: number
  peak_rss_mb: Spread
  load_ms: Spread
  tokenize_ms: Spread
  /** examples whose predicted label differs between batch sizes or runs (0: deterministic) */
  label_changes: number
  threads?: number
  /** ours: what the layer steps ran on */
  kernels?: NativeKernels
  tokenizer_agree?: number
  tokenizer_checked?: number
  versions?: Record<string, string>
}

export interface TrainReport {
  batch_size: number
  steps: number
  runs: number
  steps_per_s: Spread
  step_p50_ms: Spread
  step_p95_ms: Spread
  mean_seq_len: number
  first_loss: number
  last_loss: number
  peak_rss_mb: Spread
}

export interface BenchReport {
  machine: MachineInfo
  conditions: { started: string, finished: string, seconds: number, load1_start: number, load1_end: number, load1_max: number }
  config: Omit<BenchOptions, 'onProgress'>
  /** the CPU's GEMM-relevant ISA and its GEMM rate per precision, all cores (one single-threaded GEMM each) */
  cpu: { isa: string[], gemm: GemmRunResult }
  ours: SideReport
  /** ours with precision 'bf16' */
  ours_bf16: SideReport
  peer: SideReport | null
  training: TrainReport | null
  training_bf16: TrainReport | null
  /** ours vs peer labels at each one's best batch size (first run) */
  agreement: { same: number, of: number } | null
  ours_sentences_per_s: number
  peer_sentences_per_s: number | null
  ratio: number | null
  ours_accuracy: number | null
  peer_accuracy: number | null
  ours_peak_rss_mb: number
  train_steps_per_s: number | null
  ours_bf16_sentences_per_s: number
  ours_bf16_accuracy: number | null
  /** share of the labels equal between ours fp32 and ours bf16 (each at its best batch size, first run) */
  bf16_label_agreement: number
  train_bf16_steps_per_s: number | null
  gpt: GptReport | null
}

export async function runBench (o: BenchOptions): Promise<BenchReport> {
  const say = o.onProgress ?? (() => {})
  const machine = machineInfo()
  const started = new Date()
  const load1Start = load1()
  const s = benchState(o, say, load1Start)
  const gemm = await probeGemm(o, machine, say)
  for (let run = 1; run <= o.runs; run++) await benchRun(s, run)
  const gpt = o.gptModel !== undefined ? await gptReport(s, o.gptModel) : null
  const finished = new Date()
  return benchReport(s, machine, gemm, gpt, { started, finished, load1Start })
}

type Say = (message: string) => void

/** What every job of the bench shares, every run's results per side and precision, and the highest load seen. */
interface BenchState {
  o: BenchOptions
  say: Say
  input: InputSpec
  score: InputSpec & { batchSizes: number[], warmupBatches: number }
  ours: ScoreRunResult[]
  oursBf16: ScoreRunResult[]
  peer: ScoreRunResult[]
  train: TrainRunResult[]
  trainBf16: TrainRunResult[]
  gpt: Record<Precision, GptScoreResult[]>
  gptTrain: Record<Precision, TrainRunResult[]>
  load1Max: number
}

function benchState (o: BenchOptions, say: Say, load1Start: number): BenchState {
  const input = { data: o.data, limit: o.limit, pattern: o.pattern, verbalizer: o.verbalizer, model: o.model, maxLength: o.maxLength, order: o.order }
  return {
    o, say, input,
    score: { ...input, batchSizes: o.batchSizes, warmupBatches: o.warmupBatches },
    ours: [], oursBf16: [], peer: [], train: [], trainBf16: [],
    gpt: { fp32: [], bf16: [] },
    gptTrain: { fp32: [], bf16: [] },
    load1Max: load1Start
  }
}

/** A progress line's throughput part: sentences/s per batch size. */
function rate (r: { results: ReadonlyArray<{ batchSize: number, sentencesPerS: number }> }): string {
  return r.results.map(x => `b${x.batchSize} ${x.sentencesPerS.toFixed(1)}/s`).join(', ')
}

/** Samples the load after every job, so that load1_max shows background load that fell between start and end. */
function noteLoad (s: BenchState): void {
  s.load1Max = Math.max(s.load1Max, load1())
}

/** The CPU's GEMM rate per precision, before any run, so that the scoring's executed GFLOP/s can be put beside it. */
async function probeGemm (o: BenchOptions, machine: MachineInfo, say: Say): Promise<GemmRunResult> {
  const gemm = await runJob<GemmRunResult>({ kind: 'gemm-probe', threads: o.threads, kernels: o.kernels })
  say(`CPU: ${machine.isa.join(', ') || 'ISA unknown'}; GEMM ${gemm.shape.join('x')} (${gemm.kernels} kernels) on ${gemm.threads} core(s): ` +
    `fp32 ${gemm.fp32_gflop_per_s.toFixed(0)} GFLOP/s, bf16 ${gemm.bf16_gflop_per_s.toFixed(0)} GFLOP/s`)
  return gemm
}

/** One run of every side, in this order each run, so that background load falls on all of them alike. */
async function benchRun (s: BenchState, run: number): Promise<void> {
  await scoreOurs(s, run)
  if (s.o.peer) await scorePeer(s, run)
  if (s.o.train) await trainOurs(s, run)
  if (s.o.gptModel !== undefined) await benchGpt(s, run, s.o.gptModel)
}

async function scoreOurs (s: BenchState, run: number): Promise<void> {
  const { o, say } = s
  for (const precision of ['fp32', 'bf16'] as const) {
    const r = await runJob<ScoreRunResult>({ kind: 'ours-score', ...s.score, threads: o.threads, precision, schedule: o.schedule, kernels: o.kernels })
    ;(precision === 'fp32' ? s.ours : s.oursBf16).push(r)
    say(`run ${run}/${o.runs} ours ${precision}: ${rate(r)}; peak RSS ${r.peakRssMb.toFixed(0)} MB (load ${load1()})`)
    noteLoad(s)
  }
}

async function scorePeer (s: BenchState, run: number): Promise<void> {
  const { o, say } = s
  // the tokenizer check is the same every run: the first one does it
  const p = await runJob<ScoreRunResult>({ kind: 'peer-score', ...s.score, peerModel: o.peerModel, checkTokenizer: run === 1 })
  s.peer.push(p)
  say(`run ${run}/${o.runs} peer: ${rate(p)}; peak RSS ${p.peakRssMb.toFixed(0)} MB (load ${load1()})`)
  noteLoad(s)
}

async function trainOurs (s: BenchState, run: number): Promise<void> {
  const { o, say } = s
  for (const precision of ['fp32', 'bf16'] as const) {
    const t = await runJob<TrainRunResult>({
      kind: 'ours-train', ...s.input, order: 'dataset', batchSize: o.trainBatchSize, steps: o.trainSteps, warmupSteps: 2,
      maskProb: 0.15, seed: defaultSeed, lr: 1e-4, threads: o.threads, precision
    })
    ;(precision === 'fp32' ? s.train : s.trainBf16).push(t)
    say(`run ${run}/${o.runs} training ${precision}: ${t.stepsPerS.toFixed(2)} steps/s (batch ${t.batchSize}, mean length ${t.meanSeqLen.toFixed(0)}) (load ${load1()})`)
    noteLoad(s)
  }
}

/** The causal LM's scoring and (with o.train) its training, per precision. */
async function benchGpt (s: BenchState, run: number, gptModel: string): Promise<void> {
  const { o, say } = s
  const gptInput = { data: o.data, limit: o.limit, model: gptModel, pattern: o.gptPattern, verbalizer: o.verbalizer, maxLength: o.maxLength }
  for (const precision of ['fp32', 'bf16'] as const) {
    const r = await runJob<GptScoreResult>({ kind: 'gpt-score', ...gptInput, batchSizes: o.batchSizes, threads: o.threads, precision })
    s.gpt[precision].push(r)
    say(`run ${run}/${o.runs} GPT ${precision}: ${rate(r)} (load ${load1()})`)
    if (o.train) {
      const t = await runJob<TrainRunResult>({
        kind: 'gpt-train', ...gptInput, order: 'dataset', batchSize: o.trainBatchSize, steps: o.trainSteps, warmupSteps: 2,
        maskProb: 0, seed: defaultSeed, lr: 1e-4, threads: o.threads, precision
      })
      s.gptTrain[precision].push(t)
      say(`run ${run}/${o.runs} GPT training ${precision}: ${t.stepsPerS.toFixed(2)} steps/s (load ${load1()})`)
    }
    noteLoad(s)
  }
}

/** After the runs: the one-pass scoring per number of labels (one run), then the causal LM's figures. */
async function gptReport (s: BenchState, gptModel: string): Promise<GptReport> {
  const { o, say, gpt, gptTrain } = s
  const labels = await runJob<GptLabelsResult>({ kind: 'gpt-labels', data: o.data, limit: o.limit, model: gptModel, maxLength: o.maxLength, batchSize: 32, threads: o.threads })
  say(`GPT labels: ${labels.rows.map(r => `${r.labels} labels ${r.sentencesPerS.toFixed(1)}/s`).join(', ')}`)
  const fp32 = gptSide(gpt.fp32)
  const bf16 = gptSide(gpt.bf16)
  const a = labelsAt(gpt.fp32, fp32.best_batch_size)
  const b = labelsAt(gpt.bf16, bf16.best_batch_size)
  return {
    model: gptModel, pattern: o.gptPattern, fp32, bf16, bf16_label_agreement: sameLabels(a, b) / a.length,
    training: gptTrain.fp32.length > 0 ? trainReport(gptTrain.fp32) : null,
    training_bf16: gptTrain.bf16.length > 0 ? trainReport(gptTrain.bf16) : null,
    labels
  }
}

/** The labels of the first run at one batch size. */
function labelsAt (runs: ReadonlyArray<{ results: ReadonlyArray<{ batchSize: number, labels: number[] }> }>, batchSize: number): number[] {
  return runs[0].results.find(r => r.batchSize === batchSize)!.labels
}

/** How many of the examples two label lists agree on. */
function sameLabels (a: readonly number[], b: readonly number[]): number {
  return a.filter((l, i) => l === b[i]).length
}

/** A side's accuracy at its best batch size. */
function accuracyAt (s: SideReport): number | null {
  return s.by_batch_size.find(x => x.batch_size === s.best_batch_size)!.accuracy
}

/** The report from every run's results: each side's figures, the agreements, and the headline numbers. */
function benchReport (s: BenchState, machine: MachineInfo, gemm: GemmRunResult, gpt: GptReport | null,
  times: { started: Date, finished: Date, load1Start: number }): BenchReport {
  const oursReport = side(s.ours, gemm.fp32_gflop_per_s)
  const oursBf16Report = side(s.oursBf16, gemm.bf16_gflop_per_s)
  const peerReport = s.peer.length > 0 ? side(s.peer, gemm.fp32_gflop_per_s) : null
  const fp32Labels = labelsAt(s.ours, oursReport.best_batch_size)
  const bf16Labels = labelsAt(s.oursBf16, oursBf16Report.best_batch_size)
  const agreement = peerReport ? { same: sameLabels(fp32Labels, labelsAt(s.peer, peerReport.best_batch_size)), of: fp32Labels.length } : null
  const training = s.train.length > 0 ? trainReport(s.train) : null
  const trainingBf16 = s.trainBf16.length > 0 ? trainReport(s.trainBf16) : null
  return {
    machine,
    conditions: conditions(times, s.load1Max),
    config: { ...s.o, onProgress: undefined } as Omit<BenchOptions, 'onProgress'>,
    cpu: { isa: machine.isa, gemm },
    ours: oursReport,
    ours_bf16: oursBf16Report,
    peer: peerReport,
    training,
    training_bf16: trainingBf16,
    agreement,
    ours_sentences_per_s: oursReport.best_sentences_per_s,
    peer_sentences_per_s: peerReport?.best_sentences_per_s ?? null,
    ratio: peerReport ? oursReport.best_sentences_per_s / peerReport.best_sentences_per_s : null,
    ours_accuracy: accuracyAt(oursReport),
    peer_accuracy: peerReport ? accuracyAt(peerReport) : null,
    ours_peak_rss_mb: oursReport.peak_rss_mb.max,
    train_steps_per_s: training?.steps_per_s.median ?? null,
    ours_bf16_sentences_per_s: oursBf16Report.best_sentences_per_s,
    ours_bf16_accuracy: accuracyAt(oursBf16Report),
    bf16_label_agreement: sameLabels(fp32Labels, bf16Labels) / fp32Labels.length,
    train_bf16_steps_per_s: trainingBf16?.steps_per_s.median ?? null,
    gpt
  }
}

function conditions (times: { started: Date, finished: Date, load1Start: number }, load1Max: number): BenchReport['conditions'] {
  const { started, finished } = times
  return {
    started: started.toISOString(),
    finished: finished.toISOString(),
    seconds: (finished.getTime() - started.getTime()) / 1000,
    load1_start: times.load1Start,
    load1_end: load1(),
    load1_max: load1Max
  }
}

function gptSide (runs: GptScoreResult[]): GptSide {
  const by = runs[0].results.map(first => {
    const rs = runs.map(r => r.results.find(x => x.batchSize === first.batchSize)!)
    return {
      batch_size: first.batchSize,
      sentences_per_s: spread(rs.map(r => r.sentencesPerS)),
      p50_ms: spread(rs.map(r => r.p50Ms)),
      accuracy: first.labeled > 0 ? first.correct / first.labeled : null
    }
  })
  const best = by.reduce((a, b) => b.sentences_per_s.median > a.sentences_per_s.median ? b : a)
  return { by_batch_size: by, best_batch_size: best.batch_size, best_sentences_per_s: best.sentences_per_s.median, peak_rss_mb: spread(runs.map(r => r.peakRssMb)) }
}

function side (runs: ScoreRunResult[], gemmGflopPerS: number): SideReport {
  const sizes = runs[0].results.map(r => r.batchSize)
  const by = sizes.map((bs): SideBatchSize => {
    const rs = runs.map(r => r.results.find(x => x.batchSize === bs)!)
    const first: BatchSizeResult = rs[0]
    const gflop = first.encoderFlops / 1e9
    return {
      batch_size: bs,
      batches: first.batches,
      sentences_per_s: spread(rs.map(r => r.sentencesPerS)),
      p50_ms: spread(rs.map(r => r.p50Ms)),
      p95_ms: spread(rs.map(r => r.p95Ms)),
      accuracy: first.labeled > 0 ? first.correct / first.labeled : null,
      correct: first.correct,
      labeled: first.labeled,
      padding_waste: first.paddedTokens / first.realTokens - 1,
      encoder_gflop: gflop,
      encoder_gflop_per_s: spread(rs.map(r => gflop / r.seconds)),
      executed_gflop: first.executedFlops / 1e9,
      executed_gflop_per_s: spread(rs.map(r => first.executedFlops / 1e9 / r.seconds)),
      gemm_share: gemmGflopPerS > 0 ? spread(rs.map(r => first.executedFlops / 1e9 / r.seconds)).median / gemmGflopPerS : null,
      split_s: {
        prep: spread(rs.map(r => r.prepMs / 1000)).median,
        call: spread(rs.map(r => r.callMs / 1000)).median,
        post: spread(rs.map(r => r.postMs / 1000)).median
      }
    }
  })
  const best = by.reduce((a, b) => b.sentences_per_s.median > a.sentences_per_s.median ? b : a)
  const reference = runs[0].results[0].labels
  let changes = 0
  reference.forEach((l, i) => {
    if (runs.some(r => r.results.some(x => x.labels[i] !== l))) changes++
  })
  return {
    n: runs[0].n,
    runs: runs.length,
    by_batch_size: by,
    best_batch_size: best.batch_size,
    best_sentences_per_s: best.sentences_per_s.median,
    peak_rss_mb: spread(runs.map(r => r.peakRssMb)),
    load_ms: spread(runs.map(r => r.loadMs)),
    tokenize_ms: spread(runs.map(r => r.tokenizeMs)),
    label_changes: changes,
    threads: runs[0].threads,
    kernels: runs[0].kernels,
    tokenizer_agree: runs[0].tokenizerAgree,
    tokenizer_checked: runs[0].tokenizerChecked,
    versions: runs[0].versions
  }
}

function trainReport (runs: TrainRunResult[]): TrainReport {
  return {
    batch_size: runs[0].batchSize,
    steps: runs[0].steps,
    runs: runs.length,
    steps_per_s: spread(runs.map(r => r.stepsPerS)),
    step_p50_ms: spread(runs.map(r => r.p50Ms)),
    step_p95_ms: spread(runs.map(r => r.p95Ms)),
    mean_seq_len: runs[0].meanSeqLen,
    first_loss: runs[0].losses[0],
    last_loss: runs[0].losses[runs[0].losses.length - 1],
    peak_rss_mb: spread(runs.map(r => r.peakRssMb))
  }
}

export { renderText, renderMarkdown } from './report'
