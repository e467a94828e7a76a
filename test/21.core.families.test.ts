// RoBERTa, XLM-R, ALBERT and ERNIE through the one loader and encoder layer: embeddings, last hidden states and
// logits at every position (padding included) equal HF's (fixtures/hf-reference/families).
import t from 'tap'
import * as path from 'node:path'
import { MaskedLM } from '../lib/model'
import { fixtures } from './helpers/paths'
import { allPositions, maxAbs, maxAbsDiff, readSafetensors, toInt32 } from './helpers/safetensors'

const families = path.join(fixtures, 'families')

for (const name of ['tiny-roberta', 'tiny-xlmr', 'tiny-albert', 'tiny-ernie']) {
  t.test(`${name}: embeddings, last hidden states and logits at every position match HF within 1e-5`, async t => {
    const ref = readSafetensors(path.join(families, `${name}_reference.safetensors`))
    const get = (k: string) => ref.get(k)!
    const model = await MaskedLM.load(path.join(families, name))
    t.teardown(() => model.dispose())
    const [B, T] = get('input_ids').shape
    const ids = toInt32(get('input_ids'))
    const batch = {
      inputIds: ids,
      tokenTypeIds: ref.has('token_type_ids') ? toInt32(get('token_type_ids')) : new Int32Array(ids.length),
      attentionMask: toInt32(get('attention_mask')),
      batchSize: B,
      seqLen: T
    }
    t.ok(batch.attentionMask.includes(0), 'the batch has padding')
    const emb = await model.hiddenStates(batch, 'embeddings')
    const errEmb = maxAbsDiff(emb, get('embedding_output').data as Float32Array)
    t.ok(errEmb <= 1e-5, `embedding output max abs error ${errEmb.toExponential(2)}`)
    const last = await model.hiddenStates(batch, 'last')
    const errLast = maxAbsDiff(last, get('last_hidden').data as Float32Array)
    t.ok(errLast <= 1e-5, `last hidden max abs error ${errLast.toExponential(2)}`)
    const positions = allPositions(B, T)
    const logits = await model.logitsAt(batch, positions)
    const errLogits = maxAbsDiff(logits, get('logits').data as Float32Array)
    t.ok(errLogits <= 1e-5, `logits max abs error ${errLogits.toExponential(2)}`)
    t.ok(maxAbs(get('logits').data as Float32Array) > 0.1, 'the reference is not trivially zero')
  })
}
