// What the benchmark asks of a child process, and what comes back. Each run of each side is one fresh process,
// so that peak RSS is its own, thread pools (LibTorch/OpenBLAS vs onnxruntime) never share a process, and a
// run does not inherit another's warm caches or allocator state.
import type { NativeKernels, NativePrecision } from '../advanced'
import type { Schedule } from '../options'
import type { InputSpec } from './inputs'

export interface ScoreJob extends InputSpec {
  kind: 'ours-score' | 'peer-score'
  batchSizes: number[]
  /** untimed batches run first at each batch size */
  warmupBatches: number
  /** ours: intra-op threads (default: lib/native.ts's choice) */
  threads?: number
  /** ours: of the GEMMs (default fp32) */
  precision?: NativePrecision
  /** ours: the model's schedule load option (`pet bench --schedule`; default 'tasks') */
  schedule?: Schedule
  /** ours: the model's kernels load option (`pet bench --kernels`; default: the build's) */
  kernels?: NativeKernels
  /** peer: the ONNX model directory (transformers.js layout) */
  peerModel?: string
  /** peer: also tokenize with transformers.js's tokenizer and count identical input ids */
  checkTokenizer?: boolean
}

export interface TrainJob extends InputSpec {
  /** ours-train: a masked LM's PET steps; gpt-train: a causal LM's (the LM loss over the cloze with the gold word) */
  kind: 'ours-train' | 'gpt-train'
  batchSize: number
  steps: number
  warmupSteps: number
  /** share of the other (non-special, non-[MASK]) tokens masked as vocabulary targets */
  maskProb: number
  seed: number
  lr: number
  threads?: number
  precision?: NativePrecision
}

/** A causal LM's zero-shot scoring (its own pattern and verbalizer; `model` is the GPT's directory). */
export interface GptScoreJob {
  kind: 'gpt-score'
  data: string
  limit?: number
  model: string
  pattern: string
  verbalizer: string
  maxLength: number
  batchSizes: number[]
  threads?: number
  precision?: NativePrecision
}

/** A causal LM's scoring with 2, 15 and 120 labels (one pass per example: the prefix once, every word a branch). */
export interface GptLabelsJob {
  kind: 'gpt-labels'
  data: string
  limit?: number
  model: string
  maxLength: number
  batchSize: number
  threads?: number
  precision?: NativePrecision
}

/** The CPU's GEMM rate per precision, measured as the inference path uses the cores. */
export interface GemmJob {
  kind: 'gemm-probe'
  threads?: number
  /** the layer kernels to probe: the scoring's (`pet bench --kernels`; default: the build's) */
  kernels?: NativeKernels
}

export type Job = ScoreJob | TrainJob | GemmJob | GptScoreJob | GptLabelsJob

export interface BatchSizeResult {
  batchSize: number
  batches: number
  /** wall seconds of the timed pass over all examples (tokenization excluded, see tokenizeMs) */
  seconds: number
  sentencesPerS: number
  p50Ms: number
  p95Ms: number
  /** sum over batches of batchSize x padded length, and of real tokens */
  paddedTokens: number
  realTokens: number
  /** encoder multiply-add FLOPs of the padded batches: all layers at every position (what HF computes) */
  encoderFlops: number
  /** of which this side computes (ours: the last layer only at the [MASK] rows, besides its keys and values) */
  executedFlops: number
  /** milliseconds, summed over the timed batches: building the batch in JS, the model call, reading results */
  prepMs: number
  callMs: number
  postMs: number
  correct: number
  labeled: number
  /** predicted label index per example */
  labels: number[]
  /** process maxRSS (MB) after this batch size */
  maxRssMb: number
}

export interface ScoreRunResult {
  side: 'ours' | 'peer'
  n: number
  loadMs: number
  tokenizeMs: number
  results: BatchSizeResult[]
  peakRssMb: number
  threads?: number
  /** ours: what the model's layer steps ran on (its info().kernels) */
  kernels?: NativeKernels
  /** peer: transformers.js tokenizer ids identical to ours for this many of n */
  tokenizerAgree?: number
  /** peer: examples whose ids could be compared (all but truncated ones of non-prefix patterns) */
  tokenizerChecked?: number
  versions?: Record<string, string>
}

export interface TrainRunResult {
  side: 'ours-train'
  batchSize: number
  steps: number
  seconds: number
  stepsPerS: number
  p50Ms: number
  p95Ms: number
  meanSeqLen: number
  losses: number[]
  peakRssMb: number
}

export interface GemmRunResult {
  side: 'gemm'
  /** the probe's linear layer: rows x in x out */
  shape: [number, number, number]
  threads: number
  /** the layer kernels probed: those the scoring runs */
  kernels: NativeKernels
  fp32_gflop_per_s: number
  bf16_gflop_per_s: number
}

export interface GptScoreResult {
  side: 'gpt'
  n: number
  loadMs: number
  results: Array<{ batchSize: number, seconds: number, sentencesPerS: number, p50Ms: number, correct: number, labeled: number, labels: number[] }>
  peakRssMb: number
  threads?: number
}

export interface GptLabelsResult {
  side: 'gpt-labels'
  n: number
  batchSize: number
  /** per label set: sentences/s, and tokens per example in the one branched pass vs k separate passes */
  rows: Array<{ case: string, labels: number, sentencesPerS: number, tokensPerExample: number, separatePassTokens: number }>
}

export type JobResult = ScoreRunResult | TrainRunResult | GemmRunResult | GptScoreResult | GptLabelsResult

export type WorkerReply = { ok: true, result: JobResult } | { ok: false, message: string, code?: string }

export function maxRssMb (): number {
  return process.resourceUsage().maxRSS / 1024 // kilobytes on Linux
}
