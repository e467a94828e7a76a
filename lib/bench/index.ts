// `pet bench`: zero-shot scoring throughput and latency of ours vs transformers.js on the same padded batches,
// PET training steps/s, and peak RSS; every figure as min / median / max over runs. Each run of each side is a
// fresh child process (see jobs.ts); runs of the sides alternate so that background load falls on both.
import type { BatchOrder } from './inputs'
import type { BatchSizeResult, ScoreRunResult, TrainRunResult } from './jobs'
import { load1, machineInfo, type MachineInfo } from './machine'
import { spread, type Spread } from './stats'
import { runJob } from './worker'

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
  onProgress?: (message: string) => void
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
  ours: SideReport
  peer: SideReport | null
  training: TrainReport | null
  /** ours vs peer labels at each one's best batch size (first run) */
  agreement: { same: number, of: number } | null
  ours_sentences_per_s: number
  peer_sentences_per_s: number | null
  ratio: number | null
  ours_accuracy: number | null
  peer_accuracy: number | null
  ours_peak_rss_mb: number
  train_steps_per_s: number | null
}

export async function runBench (o: BenchOptions): Promise<BenchReport> {
  const say = o.onProgress ?? (() => {})
  const machine = machineInfo()
  const started = new Date()
  const load1Start = load1()
  let load1Max = load1Start
  const input = { data: o.data, limit: o.limit, pattern: o.pattern, verbalizer: o.verbalizer, model: o.model, maxLength: o.maxLength, order: o.order }
  const score = { ...input, batchSizes: o.batchSizes, warmupBatches: o.warmupBatches }
  const ours: ScoreRunResult[] = []
  const peer: ScoreRunResult[] = []
  const train: TrainRunResult[] = []
  const rate = (r: ScoreRunResult) => r.results.map(x => `b${x.batchSize} ${x.sentencesPerS.toFixed(1)}/s`).join(', ')
  for (let run = 1; run <= o.runs; run++) {
    const r = await runJob<ScoreRunResult>({ kind: 'ours-score', ...score, threads: o.threads })
    ours.push(r)
    say(`run ${run}/${o.runs} ours: ${rate(r)}; peak RSS ${r.peakRssMb.toFixed(0)} MB (load ${load1()})`)
    load1Max = Math.max(load1Max, load1())
    if (o.peer) {
      const p = await runJob<ScoreRunResult>({ kind: 'peer-score', ...score, peerModel: o.peerModel, checkTokenizer: run === 1 })
      peer.push(p)
      say(`run ${run}/${o.runs} peer: ${rate(p)}; peak RSS ${p.peakRssMb.toFixed(0)} MB (load ${load1()})`)
      load1Max = Math.max(load1Max, load1())
    }
    if (o.train) {
      const t = await runJob<TrainRunResult>({
        kind: 'ours-train', ...input, order: 'dataset', batchSize: o.trainBatchSize, steps: o.trainSteps, warmupSteps: 2,
        maskProb: 0.15, seed: 42, lr: 1e-4, threads: o.threads
      })
      train.push(t)
      say(`run ${run}/${o.runs} training: ${t.stepsPerS.toFixed(2)} steps/s (batch ${t.batchSize}, mean length ${t.meanSeqLen.toFixed(0)}) (load ${load1()})`)
      load1Max = Math.max(load1Max, load1())
    }
  }
  const finished = new Date()
  const oursReport = side(ours)
  const peerReport = peer.length > 0 ? side(peer) : null
  let agreement: BenchReport['agreement'] = null
  if (peerReport) {
    const a = ours[0].results.find(r => r.batchSize === oursReport.best_batch_size)!.labels
    const b = peer[0].results.find(r => r.batchSize === peerReport.best_batch_size)!.labels
    agreement = { same: a.filter((l, i) => l === b[i]).length, of: a.length }
  }
  const accuracyAt = (s: SideReport) => s.by_batch_size.find(x => x.batch_size === s.best_batch_size)!.accuracy
  const training = train.length > 0 ? trainReport(train) : null
  return {
    machine,
    conditions: {
      started: started.toISOString(),
      finished: finished.toISOString(),
      seconds: (finished.getTime() - started.getTime()) / 1000,
      load1_start: load1Start,
      load1_end: load1(),
      load1_max: load1Max
    },
    config: { ...o, onProgress: undefined } as Omit<BenchOptions, 'onProgress'>,
    ours: oursReport,
    peer: peerReport,
    training,
    agreement,
    ours_sentences_per_s: oursReport.best_sentences_per_s,
    peer_sentences_per_s: peerReport?.best_sentences_per_s ?? null,
    ratio: peerReport ? oursReport.best_sentences_per_s / peerReport.best_sentences_per_s : null,
    ours_accuracy: accuracyAt(oursReport),
    peer_accuracy: peerReport ? accuracyAt(peerReport) : null,
    ours_peak_rss_mb: oursReport.peak_rss_mb.max,
    train_steps_per_s: training?.steps_per_s.median ?? null
  }
}

function side (runs: ScoreRunResult[]): SideReport {
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
