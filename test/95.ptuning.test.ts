// P-tuning: frozen model with a prompt encoder, layouts, adapters saved and loaded, a wrong base refused.
// (The gradient of the prompt rows against HF's is checked in 20.core.parity.test.ts.)
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { MaskedLM } from '../lib/model'
import { Pattern } from '../lib/pet/pattern'
import { promptInitValues, promptPattern, promptRows } from '../lib/ptuning/prompt'
import { hashTensors } from './helpers/hash'
import { readSafetensors } from '../lib/safetensors'
import { maxAbsDiff } from './helpers/tensors'
import { killAfterEpoch, lastJson, pet, sentimentLines } from './helpers/cli'
import { miniMlm, tinyBertDir, tmpDir } from './helpers/paths'

t.test('layouts', async t => {
  t.equal(promptPattern(8, 'around'), '[unused1][unused2][unused3][unused4][MASK][unused5][unused6][unused7][unused8]{text}')
  t.equal(promptPattern(2, 'prefix'), '[unused1][unused2][MASK]{text}')
  t.equal(promptPattern(2, 'suffix'), '{text}[unused1][unused2][MASK]')
  t.same(promptRows(new Pattern(promptPattern(3, 'around')), { promptTokenId: n => n }), [1, 2, 3])
  t.throws(() => promptPattern(0, 'around'), /--prompt-tokens/)
})

t.test('frozen model + LSTM prompt encoder: every weight bit-identical, the encoder trains', async t => {
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  const before = hashTensors(model)
  const tok = model.tokenizer
  const ids = [tok.clsId, 1, 2, 3, 4, tok.maskId, 5, 6, 7, 8, ...tok.encode('这本书写得很好，推荐'), tok.sepId]
  const batch = { inputIds: Int32Array.from(ids), batchSize: 1, seqLen: ids.length }
  model.setTrainable({ kind: 'rows', rows: Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), encoder: 'lstm', promptLr: 1e-3 }, { lr: 1e-3, seed: 5 })
  const H = model.info.config.hiddenSize
  const first = model.inputRows()!
  t.equal(first.values.length, 8 * H, 'the encoder produces [8, hidden]')
  const enc = model.promptEncoderTensors()
  t.same(enc['prompt_encoder.lstm.weight_ih_l0'].shape, [4 * H, H], 'LSTM with hidden = embedding size')
  t.same(enc['prompt_encoder.mlp1.weight'].shape, [H, 2 * H], 'MLP 2h -> h')
  t.same(enc['prompt_encoder.mlp2.weight'].shape, [H, H], 'then h -> h')
  const loss = { vocabPositions: Int32Array.from([0, 5]), vocabTargets: Int32Array.from([tok.tokenToId('很')!]) }
  const losses: number[] = []
  for (let i = 0; i < 15; i++) losses.push((await model.trainStep(batch, loss)).loss)
  t.ok(losses[14] < losses[0], `loss ${losses[0].toFixed(3)} -> ${losses[14].toFixed(3)}`)
  const after = model.inputRows()!
  t.ok(after.values.some((v, i) => v !== first.values[i]), 'the prompt embeddings changed')
  const now = hashTensors(model)
  for (const [name, h] of before) t.equal(now.get(name), h, `${name} bit-identical`)
})

t.test('recomputing activations in backward gives the same gradients, dropout included', async t => {
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  const tok = model.tokenizer
  const ids = [tok.clsId, 1, 2, 3, 4, tok.maskId, 5, 6, 7, 8, ...tok.encode('物流很快，包装也好'), tok.sepId]
  const batch = { inputIds: Int32Array.from(ids), batchSize: 1, seqLen: ids.length }
  const loss = { vocabPositions: Int32Array.from([0, 5, 0, 12]), vocabTargets: Int32Array.from([2523, ids[12]]) }
  const grads = async (recompute: boolean) => {
    model.setTrainable({ kind: 'rows', rows: Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) }, { lr: 1e-3, seed: 11, recompute })
    return (await model.lossAndGrads(batch, loss, true)).grads.rows
  }
  const plain = await grads(false)
  const again = await grads(true)
  let err = 0
  let scale = 0
  plain.forEach((g, i) => { err = Math.max(err, Math.abs(g - again[i])); scale = Math.max(scale, Math.abs(g)) })
  t.ok(scale > 0 && err / scale < 1e-5, `max relative difference ${(err / scale).toExponential(2)} (train mode, dropout 0.1)`)
})

t.test('pet ptune -> adapter -> pet predict on the unchanged base; another base is refused', async t => {
  const dir = tmpDir()
  const lines = sentimentLines
  const train = path.join(dir, 'train.jsonl')
  const dev = path.join(dir, 'dev.jsonl')
  fs.writeFileSync(train, lines('train.jsonl', 0, 24))
  fs.writeFileSync(dev, lines('valid.jsonl', 0, 60))
  for (const encoder of ['none', 'mlp']) {
    const out = path.join(dir, encoder)
    const r = pet('ptune', '--train', train, '--dev', dev, '--test', dev, '--verbalizer', '{"positive":["很"],"negative":["不"]}',
      '--encoder', encoder, '--epochs', '2', '--out', out, '--json')
    t.equal(r.status, 0, r.stderr)
    const s = lastJson(r.stdout)
    t.equal(s.prompt_tokens, 8)
    t.equal(s.test_accuracy, s.dev_accuracy, `${encoder}: the adapter on the base model reproduces the dev accuracy`)
    const cfg = JSON.parse(fs.readFileSync(path.join(s.adapter, 'adapter_config.json'), 'utf8'))
    t.equal(cfg.peft_type, 'P_TUNING')
    t.equal(cfg.num_virtual_tokens, 8)
    t.ok(fs.statSync(path.join(s.adapter, 'adapter_model.safetensors')).size < 4 << 20, 'the adapter is tiny')
    t.same(fs.readdirSync(path.join(out, 'best')), ['adapter'], 'the frozen checkpoint is the adapter alone, no model copy')
    t.equal(s.model, miniMlm, 'the summary names the base model the adapter plugs onto')
    const p = pet('predict', '--model', miniMlm, '--prompt', s.adapter, '--data', dev, '--json')
    t.equal(p.status, 0, p.stderr)
    t.equal(JSON.parse(p.stdout.trim().split('\n').pop()!).accuracy, s.dev_accuracy, `${encoder}: predict with --prompt`)
    const wrong = pet('predict', '--model', tinyBertDir(), '--prompt', s.adapter, '--data', dev)
    t.equal(wrong.status, 1)
    t.match(wrong.stderr, /trained on another base model/)
  }
})

t.test('--prompt-init starts the prompt rows from real tokens; a wrong token count is refused', async t => {
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  const text = '感觉如何？满意。'
  const ids = model.tokenizer.encode(text)
  t.equal(ids.length, 8)
  const w = model.getTensor('bert.embeddings.word_embeddings.weight')
  const H = w.shape[1]
  const init = promptInitValues(model, text, [1, 2, 3, 4, 5, 6, 7, 8])
  t.equal(init.length, 8 * H)
  t.same(Array.from(init.subarray(5 * H, 6 * H)), Array.from(w.data.subarray(ids[5] * H, (ids[5] + 1) * H)))
  t.throws(() => promptInitValues(model, '满意', [1, 2, 3]), /one token per prompt token \(3\); '满意' gives 2/)

  const dir = tmpDir()
  const train = path.join(dir, 'train.jsonl')
  fs.writeFileSync(train, sentimentLines('train.jsonl', 0, 8))
  const V = '{"positive":["很"],"negative":["不"]}'
  const bad = pet('ptune', '--train', train, '--verbalizer', V, '--prompt-init', '满意', '--epochs', '1', '--out', path.join(dir, 'bad'))
  t.not(bad.status, 0)
  t.match(bad.stderr, /--prompt-init must give one token per prompt token \(8\)/)
  // A learning rate too small to move them: the saved prompt is the initial one.
  const r = pet('ptune', '--train', train, '--dev', train, '--verbalizer', V, '--prompt-init', text, '--lr', '1e-12', '--epochs', '1',
    '--out', path.join(dir, 'init'), '--json')
  t.equal(r.status, 0, r.stderr)
  const s = JSON.parse(r.stdout.trim().split('\n').pop()!)
  t.equal(s.prompt_init, text)
  const saved = readSafetensors(path.join(s.adapter, 'adapter_model.safetensors')).get('prompt_embeddings')!
  t.same(saved.shape, [8, H])
  t.ok(maxAbsDiff(saved.data as Float32Array, init) < 1e-6, 'the adapter holds the token embeddings')
})

t.test('an interrupted frozen run resumes from its adapter-only checkpoint to the same result', async t => {
  const dir = tmpDir()
  const train = path.join(dir, 'train.jsonl')
  const dev = path.join(dir, 'dev.jsonl')
  fs.writeFileSync(train, sentimentLines('train.jsonl', 0, 32))
  fs.writeFileSync(dev, sentimentLines('valid.jsonl', 0, 60))
  for (const encoder of ['none', 'mlp']) {
    const args = (out: string) => ['ptune', '--train', train, '--dev', dev, '--verbalizer', '{"positive":["很"],"negative":["不"]}',
      '--encoder', encoder, '--epochs', '3', '--batch-size', '8', '--seed', '5', '--out', out, '--json']
    const whole = pet(...args(path.join(dir, `${encoder}-whole`)))
    t.equal(whole.status, 0, whole.stderr)
    const out = path.join(dir, `${encoder}-cut`)
    await killAfterEpoch(args(out), out, 1)
    t.same(fs.readdirSync(path.join(out, 'last')).sort(), ['adapter', 'state.json', 'trainer.pt'], `${encoder}: resume state without a model copy`)
    const resumed = pet(...args(out), '--resume')
    t.equal(resumed.status, 0, resumed.stderr)
    const a = JSON.parse(fs.readFileSync(path.join(dir, `${encoder}-whole`, 'history.json'), 'utf8'))
    const b = JSON.parse(fs.readFileSync(path.join(out, 'history.json'), 'utf8'))
    t.same(b.map((h: any) => [h.loss, h.dev]), a.map((h: any) => [h.loss, h.dev]), `${encoder}: same losses and dev accuracies epoch by epoch`)
    const weights = (d: string) => fs.readFileSync(path.join(d, 'best', 'adapter', 'adapter_model.safetensors'))
    t.ok(weights(out).equals(weights(path.join(dir, `${encoder}-whole`))), `${encoder}: the same adapter, byte for byte`)
  }
})
