// One batch size's figures, the same for both sides of the bench: throughput, latency percentiles, padded and
// real tokens, the encoder FLOPs the batches stand for and those actually executed, accuracy against gold.
import { encoderFlops, type ModelShape } from './inputs'
import { maxRssMb, type BatchSizeResult } from './jobs'
import { percentile } from './stats'

export function summarise (batchSize: number, buckets: number[][], lengths: readonly number[], latencies: number[],
  seconds: number, labels: readonly number[], gold: readonly number[], shape: ModelShape,
  split: { prepMs: number, callMs: number, postMs: number },
  executed: (B: number, T: number) => number = (B, T) => encoderFlops(shape, B, T)): BatchSizeResult {
  let paddedTokens = 0
  let realTokens = 0
  let flops = 0
  let executedFlops = 0
  for (const bucket of buckets) {
    const T = Math.max(...bucket.map(i => lengths[i]))
    paddedTokens += bucket.length * T
    for (const i of bucket) realTokens += lengths[i]
    flops += encoderFlops(shape, bucket.length, T)
    executedFlops += executed(bucket.length, T)
  }
  const n = lengths.length
  let correct = 0
  let labeled = 0
  gold.forEach((g, i) => { if (g >= 0) { labeled++; if (labels[i] === g) correct++ } })
  return {
    batchSize,
    batches: buckets.length,
    seconds,
    sentencesPerS: n / seconds,
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
    paddedTokens,
    realTokens,
    encoderFlops: flops,
    executedFlops,
    ...split,
    correct,
    labeled,
    labels: [...labels],
    maxRssMb: maxRssMb()
  }
}
