// precision: 'bf16' — the layer kernel's GEMMs in bf16 (oneDNN on CPU) with fp32 LayerNorm, softmax, residual stream
// and master weights: scoring agrees with fp32 on the labels, a training step runs and learns, bad values are EINVAL.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { PetError } from '../lib/errors'
import { MaskedLM } from '../lib/model'
import { zeroShot } from '../lib/workflows/zero-shot'
import { miniMlm, sentiment, tmpDir } from './helpers/paths'

const P1 = '[MASK]满意。{text}'
const V = { positive: ['很'], negative: ['不'] }

const rejectsWith = async (t: Tap.Test, p: Promise<unknown>, code: string, re: RegExp, what: string): Promise<void> => {
  try {
    await p
    t.fail(`${what}: resolved`)
  } catch (err) {
    t.ok(err instanceof PetError && err.code === code && re.test(err.message), `${what}: ${String((err as Error).message)}`)
  }
}

t.test('bad precisions are EINVAL, never a crash', async t => {
  await rejectsWith(t, MaskedLM.load(miniMlm, { precision: 'fp16' as 'bf16' }), 'EINVAL', /precision/, 'load option')
  await rejectsWith(t, zeroShot({ data: ['好'], pattern: P1, verbalizer: V, precision: 'int8' as 'bf16' }), 'EINVAL', /precision/, 'workflow option')
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  t.equal(model.precision, 'fp32', 'fp32 by default')
  t.throws(() => model.setInferenceOptions({ precision: 'half' as 'bf16' }), /precision/)
  t.equal(model.precision, 'fp32', 'unchanged after a bad value')
})

t.test('bf16 scoring agrees with fp32 on at least 99% of the labels (400 test sentences)', async t => {
  const lines = fs.readFileSync(path.join(sentiment, 'test.jsonl'), 'utf8').trim().split('\n').slice(0, 400)
  const data = lines.map(l => JSON.parse(l) as Record<string, unknown>)
  const fp32 = await zeroShot({ data, pattern: P1, verbalizer: V, batchSize: 32 })
  const bf16 = await zeroShot({ data, pattern: P1, verbalizer: V, batchSize: 32, precision: 'bf16' })
  const same = fp32.predictions.filter((p, i) => p.label === bf16.predictions[i].label).length
  t.ok(same / data.length >= 0.99, `labels equal on ${same} of ${data.length}`)
  t.ok(Math.abs((fp32.accuracy ?? 0) - (bf16.accuracy ?? 0)) <= 0.01, `accuracy fp32 ${fp32.accuracy} vs bf16 ${bf16.accuracy}`)
  // bf16 really is another computation: the scores differ, slightly
  const d = fp32.predictions.map((p, i) => Math.abs(p.scores.positive - bf16.predictions[i].scores.positive))
  const max = Math.max(...d)
  t.ok(max > 0 && max < 0.5, `largest score difference ${max.toExponential(2)}`)
})

t.test('a bf16 training step runs, learns, and keeps fp32 master weights', async t => {
  const model = await MaskedLM.load(miniMlm, { precision: 'bf16' })
  t.teardown(() => model.dispose())
  t.equal(model.precision, 'bf16')
  const tok = model.tokenizer
  const ids = [tok.clsId, tok.maskId, ...tok.encode('满意。这本书写得很好，推荐'), tok.sepId]
  const batch = { inputIds: Int32Array.from(ids), batchSize: 1, seqLen: ids.length }
  const loss = { vocabPositions: Int32Array.from([0, 1]), vocabTargets: Int32Array.from([tok.tokenToId('很')!]) }
  const before = model.getTensor('bert.encoder.layer.0.intermediate.dense.weight').data.slice()
  // bf16 scoring multiplies with a cached bf16 copy of the weights: after training it must use the new weights.
  const candidates = [tok.tokenToId('很')!, tok.tokenToId('不')!]
  const score = async (m: MaskedLM): Promise<Float32Array> => (await m.scoreCandidates(batch, Int32Array.from([0, 1]), candidates)).logits
  const untrained = await score(model)
  model.setTrainable({ kind: 'all' }, { lr: 1e-4, seed: 3 })
  const losses: number[] = []
  for (let i = 0; i < 5; i++) losses.push((await model.trainStep(batch, loss)).loss)
  t.ok(losses.every(Number.isFinite), `finite losses ${losses.map(l => l.toFixed(4)).join(' ')}`)
  t.ok(losses[4] < losses[0], `loss went down: ${losses[0].toFixed(4)} -> ${losses[4].toFixed(4)}`)
  const after = model.getTensor('bert.encoder.layer.0.intermediate.dense.weight').data
  let moved = 0
  let notBf16 = 0
  for (let i = 0; i < after.length; i++) {
    if (after[i] !== before[i]) moved++
    // a bf16 value has its low 16 bits zero; fp32 master weights that moved by lr-sized steps do not
    if ((new Uint32Array(new Float32Array([after[i]]).buffer)[0] & 0xffff) !== 0) notBf16++
  }
  t.ok(moved > after.length / 2, `weights moved (${moved} of ${after.length})`)
  t.ok(notBf16 > after.length / 2, 'the master weights stay fp32')

  const trained = await score(model)
  const dir = tmpDir('bf16-trained-')
  await model.save(dir)
  const fresh = await MaskedLM.load(dir, { precision: 'bf16' })
  t.teardown(() => fresh.dispose())
  const reloaded = await score(fresh)
  const diff = (a: Float32Array, b: Float32Array): number => Math.max(...a.map((x, i) => Math.abs(x - b[i])))
  t.ok(diff(trained, untrained) > 1e-3, `training changed the bf16 scores (by ${diff(trained, untrained).toExponential(2)})`)
  t.equal(diff(trained, reloaded), 0, 'bf16 scores after training equal a fresh bf16 model loaded from the saved weights')
})

t.test('bf16 with recomputation (frozen P-tuning rows): the same kernel in backward, the loss goes down', async t => {
  const model = await MaskedLM.load(miniMlm, { precision: 'bf16' })
  t.teardown(() => model.dispose())
  const tok = model.tokenizer
  const ids = [tok.clsId, 1, 2, 3, 4, tok.maskId, 5, 6, 7, 8, ...tok.encode('物流很快，包装也好'), tok.sepId]
  const batch = { inputIds: Int32Array.from(ids), batchSize: 1, seqLen: ids.length }
  const loss = { vocabPositions: Int32Array.from([0, 5]), vocabTargets: Int32Array.from([tok.tokenToId('很')!]) }
  model.setTrainable({ kind: 'rows', rows: Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) }, { lr: 1e-2, recompute: true })
  const losses: number[] = []
  for (let i = 0; i < 5; i++) losses.push((await model.trainStep(batch, loss)).loss)
  t.ok(losses[4] < losses[0], `loss went down: ${losses.map(l => l.toFixed(4)).join(' ')}`)
})
