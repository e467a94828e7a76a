// Our side: zero-shot scoring through the same steps as scoreExamples (pad, native candidate scores at the
// [MASK] slots, label scores), and PET training steps with the native training primitives.
import { argmax, labelScores, MaskedLM, padBatch, type NativeBatch, type NativeKernels, type NativeLoss } from '../advanced'
// internals the bench times directly (not part of the public API)
import { maskPositionPairs } from '../batch'
import { Rng } from '../train/rng'
import { lastLayerAtRowsFlops, prepareInputs, readShape, timeBatchSizes } from './inputs'
import { summarise } from './batch-result'
import { maxRssMb, type BatchSizeResult, type GemmJob, type GemmRunResult, type ScoreJob, type ScoreRunResult, type TrainJob, type TrainRunResult } from './jobs'
import { native } from '../native'
import type { Precision } from '../options'
import { percentile } from './stats'

export async function runOursScore (job: ScoreJob): Promise<ScoreRunResult> {
  const inputs = prepareInputs(job)
  const t0 = performance.now()
  // job.schedule 'plain' (pet bench --schedule plain): compare with the plain forward pass; job.kernels (--kernels):
  // the layer steps on ATen's ops or oneDNN
  const plain = job.schedule === 'plain'
  const model = await MaskedLM.load(job.model, { threads: job.threads, schedule: plain ? 'plain' : 'tasks', precision: job.precision, kernels: job.kernels })
  const loadMs = performance.now() - t0
  try {
    const shape = readShape(model.info.config.raw)
    const { encoded, verbalizer, pattern, gold } = inputs
    const C = verbalizer.candidates.length
    const S = pattern.maskCount
    const lengths = encoded.map(e => e.inputIds.length)
    const labels = new Array<number>(encoded.length)

    const split = { prepMs: 0, callMs: 0, postMs: 0 }
    const runBatch = async (bucket: number[]): Promise<void> => {
      const t0 = performance.now()
      const items = bucket.map(i => encoded[i])
      const batch = padBatch(items, model.tokenizer.padId)
      const positions = maskPositionPairs(items)
      const t1 = performance.now()
      const r = await model.scoreCandidates(batch, positions, verbalizer.candidates)
      const t2 = performance.now()
      bucket.forEach((index, b) => {
        const scores = labelScores(verbalizer, r.logits.subarray(b * S * C, (b + 1) * S * C), r.logZ.subarray(b * S, (b + 1) * S))
        labels[index] = argmax(scores)
      })
      split.prepMs += t1 - t0
      split.callMs += t2 - t1
      split.postMs += performance.now() - t2
    }

    const timed = await timeBatchSizes(lengths, job.batchSizes, job.order, job.warmupBatches, runBatch,
      () => Object.assign(split, { prepMs: 0, callMs: 0, postMs: 0 }))
    // the native core runs the last layer only at the [MASK] rows, unless told to run the plain forward pass
    const results: BatchSizeResult[] = timed.map(t => summarise(t.batchSize, t.buckets, lengths, t.latencies, t.seconds, labels, gold, shape, split,
      plain ? undefined : (B, T) => lastLayerAtRowsFlops(shape, B, T, B * S)))
    return { side: 'ours', n: encoded.length, loadMs, tokenizeMs: inputs.tokenizeMs, results, peakRssMb: maxRssMb(), threads: model.info.threads, kernels: model.info.kernels }
  } finally {
    model.dispose()
  }
}


/** Trains on every step (all weights, AdamW at the job's lr), timing all but the first job.warmupSteps. */
export async function timeTrainSteps (model: MaskedLM, job: TrainJob, steps: ReadonlyArray<{ batch: NativeBatch, loss: NativeLoss }>): Promise<TrainRunResult> {
  model.setTrainable({ kind: 'all' }, { lr: job.lr, seed: job.seed })
  for (const s of steps.slice(0, job.warmupSteps)) await model.trainStep(s.batch, s.loss)
  const timed = steps.slice(job.warmupSteps)
  const latencies: number[] = []
  const losses: number[] = []
  const start = performance.now()
  for (const s of timed) {
    const tb = performance.now()
    losses.push((await model.trainStep(s.batch, s.loss)).loss)
    latencies.push(performance.now() - tb)
  }
  const seconds = (performance.now() - start) / 1000
  return {
    side: 'ours-train',
    batchSize: job.batchSize,
    steps: timed.length,
    seconds,
    stepsPerS: timed.length / seconds,
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
    meanSeqLen: timed.reduce((a, s) => a + s.batch.seqLen, 0) / timed.length,
    losses,
    peakRssMb: maxRssMb()
  }
}

/** Seeded uniform [0, 1) stream, so every run masks the same tokens (scripts/gpu-inputs.js uses it too): the
 * training Rng started from the raw seed, i.e. mulberry32(seed). */
export function rng (seed: number): () => number {
  const r = new Rng(0)
  r.seedState = seed
  return () => r.next()
}

export async function runOursTrain (job: TrainJob): Promise<TrainRunResult> {
  const inputs = prepareInputs(job)
  const model = await MaskedLM.load(job.model, { threads: job.threads, precision: job.precision })
  try {
    const { encoded, verbalizer, pattern, gold } = inputs
    const tok = model.tokenizer
    const special = new Set([tok.clsId, tok.sepId, tok.padId, tok.maskId])
    const labeledIdx = encoded.map((_, i) => i).filter(i => gold[i] >= 0)
    if (labeledIdx.length === 0) throw new Error('training needs labeled examples')
    const S = pattern.maskCount
    const random = rng(job.seed)
    // Batches in dataset order (as a shuffled training epoch would pad: to the longest of the batch).
    const batchAt = (step: number) => {
      const idx: number[] = []
      for (let k = 0; k < job.batchSize; k++) idx.push(labeledIdx[(step * job.batchSize + k) % labeledIdx.length])
      return idx
    }
    const makeStep = (step: number) => {
      const idx = batchAt(step)
      const items = idx.map(i => ({ ...encoded[i], inputIds: [...encoded[i].inputIds] }))
      const vocabPositions: number[] = []
      const vocabTargets: number[] = []
      items.forEach((e, b) => {
        const masks = new Set(e.maskPositions)
        e.inputIds.forEach((id, col) => {
          if (special.has(id) || masks.has(col) || random() >= job.maskProb) return
          vocabPositions.push(b, col)
          vocabTargets.push(id)
          e.inputIds[col] = tok.maskId
        })
      })
      const batch = padBatch(items, tok.padId)
      const candPositions = new Int32Array(items.length * S * 2)
      const candLabels = new Int32Array(items.length * S)
      items.forEach((e, b) => e.maskPositions.forEach((col, s) => {
        const m = b * S + s
        candPositions[m * 2] = b
        candPositions[m * 2 + 1] = col
        // the gold label's word at this slot (the first word of the label), as an index into the candidates
        candLabels[m] = verbalizer.candidateIndex.get(verbalizer.words[gold[idx[b]]][0].ids[s])!
      }))
      return {
        batch,
        loss: {
          candPositions,
          candidates: Int32Array.from(verbalizer.candidates),
          numCandidates: verbalizer.candidates.length,
          candLabels,
          ...(vocabTargets.length > 0 ? { vocabPositions: Int32Array.from(vocabPositions), vocabTargets: Int32Array.from(vocabTargets) } : {})
        }
      }
    }
    return await timeTrainSteps(model, job, Array.from({ length: job.warmupSteps + job.steps }, (_, s) => makeStep(s)))
  } finally {
    model.dispose()
  }
}

/** The probe's layer: the feed-forward's first GEMM of zh-mini-mlm on a 512-row chunk (the inference path's size). */
const probeShape: [number, number, number] = [512, 256, 1024]

export async function runGemmProbe (job: GemmJob): Promise<GemmRunResult> {
  const addon = native()
  if (job.threads !== undefined) addon.setNumThreads(job.threads)
  const threads = addon.getNumThreads()
  const [rows, inF, out] = probeShape
  // through the kernels the scoring runs (job.kernels: pet bench --kernels), so that the executed rate's share of it is true
  const rate = (precision: Precision) => addon.gemmRate({ rows, in: inF, out, precision, threads, kernels: job.kernels })
  const probed: NativeKernels = job.kernels ?? (addon.onednnVersion !== '' ? 'onednn' : 'aten')
  return { side: 'gemm', shape: probeShape, threads, kernels: probed, fp32_gflop_per_s: rate('fp32'), bf16_gflop_per_s: rate('bf16') }
}
