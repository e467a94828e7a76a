// The benchmark's inputs, built the same way for every side: examples from the data file, encoded with our
// tokenizer and the pattern (transformers.js gets these very ids), cut into batches. Loads no native code.
import * as path from 'node:path'
import { loadExamples } from '../data/examples'
import { Pattern, type EncodedInput } from '../pet/pattern'
import { checkPatternVerbalizer } from '../pet/score'
import { Verbalizer } from '../pet/verbalizer'
import { WordPieceTokenizer } from '../tokenizer/wordpiece'
import { lengthBuckets } from '../batch'
import { PetError } from '../errors'

export type BatchOrder = 'sorted' | 'dataset'

/** What every benchmark child process needs to rebuild identical inputs. */
export interface InputSpec {
  data: string
  limit?: number
  pattern: string
  verbalizer: string
  /** our model directory: its vocab.txt tokenizes for every side */
  model: string
  maxLength: number
  order: BatchOrder
}

export interface BenchInputs {
  pattern: Pattern
  verbalizer: Verbalizer
  tokenizer: WordPieceTokenizer
  texts: string[][]
  encoded: EncodedInput[]
  /** verbalizer label index per example, -1 when unlabeled */
  gold: number[]
  /** milliseconds to encode all examples (our tokenizer and pattern) */
  tokenizeMs: number
}

export function prepareInputs (spec: InputSpec): BenchInputs {
  const tokenizer = WordPieceTokenizer.fromFile(path.join(spec.model, 'vocab.txt'), { splitSpecialTokens: false })
  const pattern = new Pattern(spec.pattern)
  const verbalizer = Verbalizer.parse(spec.verbalizer, tokenizer, pattern)
  checkPatternVerbalizer(pattern, verbalizer)
  let examples = loadExamples(spec.data, pattern.fields, { labelField: 'label' }, 'data')
  if (spec.limit !== undefined) examples = examples.slice(0, spec.limit)
  const t0 = performance.now()
  const encoded = examples.map(e => {
    try {
      return pattern.encode(e.fields, tokenizer, spec.maxLength)
    } catch (err) {
      if (err instanceof PetError) throw new PetError(`${e.source}: ${err.message}`, err.code)
      throw err
    }
  })
  const tokenizeMs = performance.now() - t0
  const gold = examples.map(e => e.label === undefined ? -1 : verbalizer.labelIndex(e.label))
  return { pattern, verbalizer, tokenizer, texts: examples.map(e => pattern.fields.map(f => e.fields[f])), encoded, gold, tokenizeMs }
}

/** Batches of example indices: length-sorted buckets (what scoreExamples does) or the dataset order. */
export function batchesFor (lengths: readonly number[], batchSize: number, order: BatchOrder): number[][] {
  if (order === 'sorted') return lengthBuckets(lengths, batchSize)
  const all = lengths.map((_, i) => i)
  const out: number[][] = []
  for (let i = 0; i < all.length; i += batchSize) out.push(all.slice(i, i + batchSize))
  return out
}

export interface TimedBatchSize { batchSize: number, buckets: number[][], latencies: number[], seconds: number }

/**
 * Times `runBatch` over every batch of each batch size (after `warmup` untimed batches; `onTimed` is called
 * when the timed part starts, e.g. to reset split timers): per-batch latencies and the total seconds.
 */
export async function timeBatchSizes (lengths: readonly number[], batchSizes: readonly number[], order: BatchOrder, warmup: number,
  runBatch: (bucket: number[]) => Promise<void>, onTimed: () => void): Promise<TimedBatchSize[]> {
  const out: TimedBatchSize[] = []
  for (const batchSize of batchSizes) {
    const buckets = batchesFor(lengths, batchSize, order)
    for (const bucket of buckets.slice(0, warmup)) await runBatch(bucket)
    onTimed()
    const latencies: number[] = []
    const start = performance.now()
    for (const bucket of buckets) {
      const tb = performance.now()
      await runBatch(bucket)
      latencies.push(performance.now() - tb)
    }
    out.push({ batchSize, buckets, latencies, seconds: (performance.now() - start) / 1000 })
  }
  return out
}

export interface ModelShape {
  hiddenSize: number
  intermediateSize: number
  numHiddenLayers: number
  vocabSize: number
}

/**
 * Multiply-add FLOPs (2 per MAC) of the BERT encoder on one padded [B, T] batch: the Q, K, V and output
 * projections, the feed-forward pair and the two attention products (scores and context) of every layer.
 */
export function encoderFlops (m: ModelShape, B: number, T: number): number {
  const H = m.hiddenSize
  const I = m.intermediateSize
  const perLayer = 2 * B * T * (4 * H * H + 2 * H * I) + 2 * 2 * B * T * T * H
  return m.numHiddenLayers * perLayer
}

/**
 * The encoder FLOPs when the last layer runs only for `rows` query rows: every layer's keys and values (and all of
 * the other layers) for all tokens, the last layer's queries, attention, output projection and feed-forward for
 * the rows only.
 */
export function lastLayerAtRowsFlops (m: ModelShape, B: number, T: number, rows: number): number {
  const H = m.hiddenSize
  const I = m.intermediateSize
  const full = encoderFlops({ ...m, numHiddenLayers: m.numHiddenLayers - 1 }, B, T)
  return full + 2 * B * T * 2 * H * H + 2 * rows * (2 * H * H + 2 * H * I) + 2 * 2 * rows * T * H
}

/** FLOPs of the MLM head (transform + full-vocabulary decoder) at `rows` positions. */
export function headFlops (m: ModelShape, rows: number): number {
  return 2 * rows * (m.hiddenSize * m.hiddenSize + m.hiddenSize * m.vocabSize)
}

/** The shape figures of an HF config.json text. */
export function readShape (configRaw: string): ModelShape {
  const c = JSON.parse(configRaw) as Record<string, number>
  return { hiddenSize: c.hidden_size, intermediateSize: c.intermediate_size, numHiddenLayers: c.num_hidden_layers, vocabSize: c.vocab_size }
}
