// Padding encoded inputs into native batches, and length bucketing so that a batch pads little.
import type { NativeBatch } from '../bindings'

export interface Encoded {
  inputIds: readonly number[]
  tokenTypeIds?: readonly number[]
}

/**
 * The token type of segment `segment` (0 up to a pattern's [SEP] or the first field's, 1 after) for a model with
 * `typeVocabSize` token types: RoBERTa and XLM-R have one (type_vocab_size 1, as HF's tokenizers give type 0 for
 * pairs too), GPT-2 none; each input is then all type 0.
 */
export function tokenType (segment: number, typeVocabSize: number): number {
  return Math.min(segment, Math.max(typeVocabSize, 1) - 1)
}

/** A pattern's encoding (segment 1 after its [SEP]) with the model's token types (tokenType): BERT's unchanged. */
export function withTokenTypes<E extends { tokenTypeIds: number[] }> (e: E, typeVocabSize: number): E {
  return typeVocabSize >= 2 ? e : { ...e, tokenTypeIds: e.tokenTypeIds.map(s => tokenType(s, typeVocabSize)) }
}

/** Right-pads with the pad id; attention mask 0 on padding. */
export function padBatch (items: readonly Encoded[], padId: number): NativeBatch {
  const batchSize = items.length
  const seqLen = Math.max(...items.map(e => e.inputIds.length))
  const inputIds = new Int32Array(batchSize * seqLen).fill(padId)
  const tokenTypeIds = new Int32Array(batchSize * seqLen)
  const attentionMask = new Int32Array(batchSize * seqLen)
  items.forEach((e, b) => {
    const base = b * seqLen
    inputIds.set(e.inputIds, base)
    if (e.tokenTypeIds) tokenTypeIds.set(e.tokenTypeIds, base)
    attentionMask.fill(1, base, base + e.inputIds.length)
  })
  return { inputIds, tokenTypeIds, attentionMask, batchSize, seqLen }
}

/**
 * Groups of indices, each at most batchSize long, of similar length: items are sorted by length (stable, so
 * the grouping is deterministic) and cut in order. Results must be put back by index.
 */
export function lengthBuckets (lengths: readonly number[], batchSize: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b)
  const out: number[][] = []
  for (let i = 0; i < order.length; i += batchSize) out.push(order.slice(i, i + batchSize))
  return out
}

/** (row, column) pairs of every item's [MASK] slots, in item then slot order, for scoreCandidates. */
export function maskPositionPairs (items: ReadonlyArray<{ maskPositions: readonly number[] }>): Int32Array {
  const out: number[] = []
  items.forEach((e, b) => { for (const col of e.maskPositions) out.push(b, col) })
  return Int32Array.from(out)
}
