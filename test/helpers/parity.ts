// The forward-parity checks every HF reference fixture gets: the batch as HF ran it, then the embedding output, the
// last hidden states and the logits at every position (padding included) against the reference.
import type { Test } from 'tap'
import type { MaskedLM } from '../../lib/model'
import type { NativeBatch } from '../../bindings'
import type { SafetensorsTensor } from '../../lib/safetensors'
import { allPositions, maxAbs, maxAbsDiff, toInt32 } from './tensors'

/** The reference's batch from `idsKey` (token types zero where the fixture has none). */
export function referenceBatch (ref: Map<string, SafetensorsTensor>, idsKey = 'input_ids'): NativeBatch {
  const [batchSize, seqLen] = ref.get(idsKey)!.shape
  const inputIds = toInt32(ref.get(idsKey)!)
  const types = ref.get('token_type_ids')
  return { inputIds, tokenTypeIds: types ? toInt32(types) : new Int32Array(inputIds.length), attentionMask: toInt32(ref.get('attention_mask')!), batchSize, seqLen }
}

/** Embedding output, last hidden states and logits at every position within `tol` of the reference's. */
export async function checkForward (t: Test, model: MaskedLM, batch: NativeBatch, ref: Map<string, SafetensorsTensor>, tol: number): Promise<void> {
  const want = (k: string) => ref.get(k)!.data as Float32Array
  const errEmb = maxAbsDiff(await model.hiddenStates(batch, 'embeddings'), want('embedding_output'))
  t.ok(errEmb <= tol, `embedding output max abs error ${errEmb.toExponential(2)}`)
  const errLast = maxAbsDiff(await model.hiddenStates(batch, 'last'), want('last_hidden'))
  t.ok(errLast <= tol, `last hidden max abs error ${errLast.toExponential(2)}`)
  const errLogits = maxAbsDiff(await model.logitsAt(batch, allPositions(batch.batchSize, batch.seqLen)), want('logits'))
  t.ok(errLogits <= tol, `logits max abs error ${errLogits.toExponential(2)}`)
  t.ok(maxAbs(want('logits')) > 0.1, 'the reference is not trivially zero')
}
