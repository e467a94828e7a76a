// The native forward pass and its gradients against Hugging Face transformers' outputs.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { MaskedLM } from '../../lib/model'
import { maskPositionPairs, padBatch } from '../../lib/batch'
import { native } from '../../lib/native'
import type { NativeKernels } from '../../bindings'
import { Pattern } from '../../lib/pet/pattern'
import { checkForward, referenceBatch } from '../helpers/parity'
import { fixtures, miniMlm, sentiment, tinyBertDir } from '../helpers/paths'
import { readSafetensors } from '../../lib/safetensors'
import { maxAbs, maxAbsDiff, toInt32 } from '../helpers/tensors'

const ref = readSafetensors(path.join(fixtures, 'tiny_bert_reference.safetensors'))
const get = (name: string) => ref.get(name)!

t.test('tiny-bert: embeddings, last hidden states and logits match HF within 1e-4', async t => {
  const model = await MaskedLM.load(tinyBertDir())
  t.teardown(() => model.dispose())
  await checkForward(t, model, referenceBatch(ref), ref, 1e-4)
})

t.test('tiny-bert: P-tuning loss and the gradient of rows 1..8 match HF within 1e-5 relative', async t => {
  const model = await MaskedLM.load(tinyBertDir())
  t.teardown(() => model.dispose())
  const ids = toInt32(get('ptuning_input_ids'))
  const batch = { inputIds: ids, batchSize: 1, seqLen: ids.length }
  const hen = model.tokenizer.tokenToId('很')!
  t.equal(hen, 2523)
  model.setTrainable({ kind: 'rows', rows: Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) }, { lr: 1e-3 })
  const r = await model.lossAndGrads(batch, { vocabPositions: Int32Array.from([0, 5]), vocabTargets: Int32Array.from([hen]) }, false)
  const refLoss = (get('ptuning_loss').data as Float32Array)[0]
  t.ok(Math.abs(r.loss - refLoss) / Math.abs(refLoss) <= 1e-5, `loss ${r.loss} vs ${refLoss}`)
  const refGrad = get('ptuning_grad_rows_1_8').data as Float32Array
  const rel = maxAbsDiff(r.grads.rows, refGrad) / maxAbs(refGrad)
  t.ok(rel <= 1e-5, `gradient max relative error ${rel.toExponential(2)}`)
  t.same(Object.keys(r.grads), ['rows'], 'only the rows are trainable')
  const maskLogits = await model.logitsAt(batch, Int32Array.from([0, 5]))
  const errMask = maxAbsDiff(maskLogits, get('ptuning_mask_logits').data as Float32Array)
  t.ok(errMask <= 1e-4, `mask logits max abs error ${errMask.toExponential(2)}`)
})

t.test('zh-mini-mlm: [MASK] logits of 16 test sentences (P1) match HF within 1e-4, inputs built identically', async t => {
  const inputs = JSON.parse(fs.readFileSync(path.join(fixtures, 'mini_p1_test16_inputs.json'), 'utf8')) as
    { pattern: string, input_ids: number[][], mask_positions: number[] }
  const refLogits = readSafetensors(path.join(fixtures, 'mini_p1_test16_mask_logits.safetensors')).get('mask_logits')!
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  const texts = fs.readFileSync(path.join(sentiment, 'test.jsonl'), 'utf8').split('\n').slice(0, 16).map(l => JSON.parse(l).text as string)
  const pattern = new Pattern('[MASK]满意。{text}')
  const V = model.info.config.vocabSize
  for (let i = 0; i < 16; i++) {
    const enc = pattern.encode({ text: texts[i] }, model.tokenizer, 128)
    t.same(enc.inputIds, inputs.input_ids[i], `sentence ${i}: input ids equal HF's`)
    t.equal(enc.maskPositions[0], inputs.mask_positions[i])
    const logits = await model.logitsAt({ inputIds: Int32Array.from(enc.inputIds), batchSize: 1, seqLen: enc.inputIds.length },
      Int32Array.from([0, enc.maskPositions[0]]))
    const err = maxAbsDiff(logits, (refLogits.data as Float32Array).subarray(i * V, (i + 1) * V))
    t.ok(err <= 1e-4, `sentence ${i}: max abs error ${err.toExponential(2)}`)
  }
})

t.test('zh-mini-mlm: the layer steps through oneDNN and through ATen\'s ops both match HF on a padded batch of 16', async t => {
  const inputs = JSON.parse(fs.readFileSync(path.join(fixtures, 'mini_p1_test16_inputs.json'), 'utf8')) as
    { input_ids: number[][], mask_positions: number[] }
  const refLogits = readSafetensors(path.join(fixtures, 'mini_p1_test16_mask_logits.safetensors')).get('mask_logits')!.data as Float32Array
  const items = inputs.input_ids.map((ids, i) => ({ inputIds: ids, maskPositions: [inputs.mask_positions[i]] }))
  const batch = padBatch(items, 0)
  t.ok(new Set(inputs.input_ids.map(ids => ids.length)).size > 1, 'sentences of different lengths: padded rows are masked')
  const kernels: NativeKernels[] = native().onednnVersion ? ['onednn', 'aten'] : ['aten']
  const got: Float32Array[] = []
  for (const k of kernels) {
    const model = await MaskedLM.load(miniMlm, { kernels: k })
    t.equal(model.info.kernels, k, `info.kernels says ${k}`)
    const logits = await model.logitsAt(batch, maskPositionPairs(items))
    model.dispose()
    const err = maxAbsDiff(logits, refLogits)
    t.ok(err <= 1e-4, `${k}: max abs error ${err.toExponential(2)} against HF`)
    got.push(logits)
  }
  if (got.length === 2) {
    const d = maxAbsDiff(got[0], got[1])
    t.ok(d <= 1e-4, `oneDNN vs ATen: max abs difference ${d.toExponential(2)}`)
    t.ok(d > 0, 'the two really ran different kernels (their sums differ in order)')
  }
  const model = await MaskedLM.load(miniMlm)
  t.equal(model.info.kernels, native().onednnVersion ? 'onednn' : 'aten', 'the default: oneDNN where the build calls it')
  model.dispose()
  await t.rejects(MaskedLM.load(miniMlm, { kernels: 'mkl' as NativeKernels }), { name: 'PetError', code: 'EINVAL', message: /kernels/ })
  if (!native().onednnVersion) {
    await t.rejects(MaskedLM.load(miniMlm, { kernels: 'onednn' }), { name: 'PetError', code: 'EINVAL', message: /libdnnl-dev/ })
  }
})
