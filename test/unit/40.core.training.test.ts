// Training primitives: gradient-masked embedding rows, named tensors, everything; save -> load round trip.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { MaskedLM } from '../../lib/model'
import { hashTensors, rowHashes } from '../helpers/hash'
import { miniMlm, tinyBertDir, tmpDir } from '../helpers/paths'
import { readSafetensors } from '../../lib/safetensors'
import { maxAbsDiff } from '../helpers/tensors'

const WORD = 'bert.embeddings.word_embeddings.weight'

function sentenceBatch (model: MaskedLM) {
  const tok = model.tokenizer
  const ids = [tok.clsId, 1, 2, 3, 4, tok.maskId, 5, 6, 7, 8, ...tok.encode('这趟北京之旅我感觉很不错。'), tok.sepId]
  return { batch: { inputIds: Int32Array.from(ids), batchSize: 1, seqLen: ids.length }, maskPos: 5 }
}

t.test('embedding-row training: after 20 steps only the chosen rows changed', async t => {
  const model = await MaskedLM.load(tinyBertDir())
  t.teardown(() => model.dispose())
  const before = hashTensors(model)
  const H = model.info.config.hiddenSize
  const rowsBefore = rowHashes(model.getTensor(WORD).data, H)
  const rows = [1, 2, 3, 4, 5, 6, 7, 8]
  t.equal(model.setTrainable({ kind: 'rows', rows: Int32Array.from(rows) }, { lr: 1e-2, weightDecay: 0.01, seed: 1 }), rows.length * H)
  const { batch, maskPos } = sentenceBatch(model)
  const loss = { vocabPositions: Int32Array.from([0, maskPos]), vocabTargets: Int32Array.from([model.tokenizer.tokenToId('很')!]) }
  const losses: number[] = []
  for (let i = 0; i < 20; i++) losses.push((await model.trainStep(batch, loss)).loss)
  t.ok(losses[19] < losses[0], `loss went down: ${losses[0].toFixed(4)} -> ${losses[19].toFixed(4)}`)
  const after = hashTensors(model)
  for (const [name, h] of before) {
    if (name !== WORD) t.equal(after.get(name), h, `${name} bit-identical`)
  }
  const rowsAfter = rowHashes(model.getTensor(WORD).data, H)
  let changedOther = 0
  rowsAfter.forEach((h, r) => { if (!rows.includes(r) && h !== rowsBefore[r]) changedOther++ })
  t.equal(changedOther, 0, 'every other row of the word embeddings is bit-identical')
  t.ok(rows.every(r => rowsAfter[r] !== rowsBefore[r]), 'each trained row changed')
})

t.test('named-tensor training changes only those tensors', async t => {
  const model = await MaskedLM.load(tinyBertDir())
  t.teardown(() => model.dispose())
  const before = hashTensors(model)
  const names = ['cls.predictions.bias', 'bert.encoder.layer.1.output.dense.weight']
  model.setTrainable({ kind: 'tensors', names }, { lr: 1e-2 })
  const { batch, maskPos } = sentenceBatch(model)
  for (let i = 0; i < 3; i++) await model.trainStep(batch, { vocabPositions: Int32Array.from([0, maskPos]), vocabTargets: Int32Array.from([2523]) })
  const after = hashTensors(model)
  for (const [name, h] of before) {
    if (names.includes(name)) t.not(after.get(name), h, `${name} changed`)
    else t.equal(after.get(name), h, `${name} unchanged`)
  }
  t.throws(() => model.setTrainable({ kind: 'tensors', names: ['nope.weight'] }), /no such tensor/)
  t.throws(() => model.setTrainable({ kind: 'rows', rows: Int32Array.from([99999]) }), /outside the vocabulary/)
})

t.test('full training with candidate loss learns, is seeded, and save -> load reproduces logits', async t => {
  const run = async () => {
    const model = await MaskedLM.load(miniMlm)
    const tok = model.tokenizer
    const ids = [tok.clsId, tok.maskId, ...tok.encode('满意。这本书写得很好'), tok.sepId]
    const batch = { inputIds: Int32Array.from(ids), batchSize: 1, seqLen: ids.length }
    model.setTrainable({ kind: 'all' }, { lr: 1e-4, seed: 7, warmupSteps: 2, totalSteps: 10 })
    const cands = Int32Array.from([tok.tokenToId('很')!, tok.tokenToId('不')!])
    const losses: number[] = []
    for (let i = 0; i < 10; i++) {
      const r = await model.trainStep(batch, {
        candPositions: Int32Array.from([0, 1]), candidates: cands, numCandidates: 2, candLabels: Int32Array.from([1]),
        vocabPositions: Int32Array.from([0, 3]), vocabTargets: Int32Array.from([ids[3]]), vocabWeight: 0.1
      })
      losses.push(r.loss)
    }
    return { model, batch, losses }
  }
  const a = await run()
  const b = await run()
  t.teardown(() => { a.model.dispose(); b.model.dispose() })
  t.ok(a.losses[9] < a.losses[0], `loss ${a.losses[0].toFixed(3)} -> ${a.losses[9].toFixed(3)}`)
  t.same(a.losses, b.losses, 'same seed, same losses (dropout included)')

  const dir = tmpDir()
  await a.model.save(dir)
  for (const f of ['config.json', 'model.safetensors', 'vocab.txt']) t.ok(fs.existsSync(path.join(dir, f)), `${f} written`)
  const saved = readSafetensors(path.join(dir, 'model.safetensors'))
  t.notOk(saved.has('cls.predictions.decoder.weight'), 'tied decoder is not duplicated')
  t.equal(saved.size, a.model.tensorNames().length)
  const reloaded = await MaskedLM.load(dir)
  t.teardown(() => reloaded.dispose())
  const pos = Int32Array.from([0, 1, 0, 3])
  const l1 = await a.model.logitsAt(a.batch, pos)
  const l2 = await reloaded.logitsAt(a.batch, pos)
  t.equal(maxAbsDiff(l1, l2), 0, 'logits identical after the round trip')
  const orig = await MaskedLM.load(miniMlm)
  t.teardown(() => orig.dispose())
  t.ok(maxAbsDiff(await orig.logitsAt(a.batch, pos), l1) > 1e-3, 'training did change the model')
})

t.test('bad training input is a clear error and leaves the model usable', async t => {
  const model = await MaskedLM.load(tinyBertDir())
  t.teardown(() => model.dispose())
  const { batch, maskPos } = sentenceBatch(model)
  // every failure of an asynchronous call rejects its promise with a PetError, misuse of the surface included
  await t.rejects(model.trainStep(batch, { vocabPositions: Int32Array.from([0, 1]), vocabTargets: Int32Array.from([1]) }), { name: 'PetError', message: /setTrainable/ })
  model.setTrainable({ kind: 'all' })
  await t.rejects(model.trainStep(batch, {}), /no positions/)
  await t.rejects(model.trainStep(batch, { vocabPositions: Int32Array.from([0, 99]), vocabTargets: Int32Array.from([1]) }), /outside the sequence/)
  await t.rejects(model.trainStep(batch, { vocabPositions: Int32Array.from([0, maskPos]), vocabTargets: Int32Array.from([21128]) }), /outside \[0, 21128\)/)
  await t.rejects(model.trainStep(batch, {
    candPositions: Int32Array.from([0, maskPos]), candidates: Int32Array.from([1, 2]), numCandidates: 2, candLabels: Int32Array.from([2])
  }), /candidate label/)
  const r = await model.trainStep(batch, { vocabPositions: Int32Array.from([0, maskPos]), vocabTargets: Int32Array.from([2523]) })
  t.equal(r.step, 1, 'a good step still runs after the rejected ones')
})

t.test('fusedAdamw: false takes LibTorch\'s per-tensor AdamW (same formula, other rounding); a non-boolean is a PetError', async t => {
  const run = async (fusedAdamw?: boolean): Promise<Float32Array> => {
    const model = await MaskedLM.load(tinyBertDir())
    try {
      model.setTrainable({ kind: 'all' }, { lr: 1e-3, seed: 2, ...(fusedAdamw === undefined ? {} : { fusedAdamw }) })
      const { batch, maskPos } = sentenceBatch(model)
      for (let i = 0; i < 3; i++) await model.trainStep(batch, { vocabPositions: Int32Array.from([0, maskPos]), vocabTargets: Int32Array.from([2523]) })
      return model.getTensor('bert.encoder.layer.0.attention.self.query.weight').data
    } finally {
      model.dispose()
    }
  }
  const byDefault = await run(), fused = await run(true), plain = await run(false)
  t.equal(maxAbsDiff(byDefault, fused), 0, 'fused by default')
  const d = maxAbsDiff(fused, plain)
  t.ok(d > 0 && d < 1e-5, `LibTorch's step differs only in rounding: max difference ${d.toExponential(2)} (lr 1e-3)`)
  const model = await MaskedLM.load(tinyBertDir())
  t.teardown(() => model.dispose())
  t.throws(() => model.setTrainable({ kind: 'all' }, { fusedAdamw: 'no' as unknown as boolean }), { name: 'PetError', code: 'ENATIVE', message: /Expected boolean for fusedAdamw/ })
})
