// Training with a causal LM (GPT-2): PET's steps (the LM loss over the pattern with the label word, or the label
// loss at the answer position), P-tuning with the prompt around the text (adapter, encoders, full), continued
// pretraining on the LM objective, and the fine-tune baseline from the last non-padding token.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { MaskedLM } from '../lib/model'
import { Classifier } from '../lib/classifier'
import { Pattern } from '../lib/pet/pattern'
import { Verbalizer } from '../lib/pet/verbalizer'
import { petSteps } from '../lib/pet/train'
import { defaultLabelScoreOptions } from '../lib/pet/label-scores'
import { Rng } from '../lib/train/rng'
import { loadAdapter } from '../lib/ptuning/adapter'
import { promptPattern } from '../lib/ptuning/prompt'
import { finetune } from '../lib/workflows/finetune'
import { pretrain } from '../lib/workflows/pretrain'
import { ptune } from '../lib/workflows/ptune'
import { train as trainPet } from '../lib/workflows/train'
import { hashTensors } from './helpers/hash'
import { isAccuracyOver } from './helpers/accuracy'
import { lastJson, pet, sentimentLines } from './helpers/cli'
import { miniMlm, shared, tmpDir } from './helpers/paths'

const miniGpt = path.join(shared, 'models/zh-mini-gpt')
const sentiment = { positive: ['很'], negative: ['不'] }
const dir = tmpDir()
const trainFile = path.join(dir, 'train.jsonl')
const devFile = path.join(dir, 'dev.jsonl')
fs.writeFileSync(trainFile, sentimentLines('train.jsonl', 0, 24))
fs.writeFileSync(devFile, sentimentLines('valid.jsonl', 0, 60))
const lossOptions = { alpha: 0.75, maskRate: 0, unlabeledRatio: 0, labelScores: defaultLabelScoreOptions, maxLength: 64 }
const examples = ['服务很好很满意', '房间太小了，不推荐'].map((text, i) => ({ fields: { text }, label: i === 0 ? 'positive' : 'negative', source: `train[${i}]` }))

/** log-softmax of one row of logits at `target` */
function logp (row: Float32Array, target: number): number {
  let m = -Infinity
  for (const x of row) m = Math.max(m, x)
  let z = 0
  for (const x of row) z += Math.exp(x - m)
  return row[target] - m - Math.log(z)
}

t.test("PET steps on a causal LM: 'vocab' is the LM loss over [CLS] + prefix + word + suffix, padding in the batch", async t => {
  const model = await MaskedLM.load(miniGpt)
  t.teardown(() => model.dispose())
  const pattern = new Pattern('{text}总之，[MASK]好。')
  const verbalizer = new Verbalizer(sentiment, model.tokenizer)
  const steps = petSteps(model, pattern, verbalizer, examples, [], { ...lossOptions, labelLoss: 'vocab' })
  t.equal(steps.maskRate, 0, 'no random masking')
  const { batch, loss } = steps.buildStep(steps.items, new Rng(1))
  t.not(batch.seqLen * 2, batch.attentionMask!.reduce((a, b) => a + b, 0), 'the rows have different lengths')
  model.setTrainable({ kind: 'all' }, { lr: 1e-4 })
  const r = await model.lossAndGrads(batch, loss, false)
  // the same loss from full-vocabulary logits, row by row, without padding
  let sum = 0
  let n = 0
  for (const [i, e] of examples.entries()) {
    const { prefix, suffix } = pattern.encodeCausal(e.fields, model.tokenizer, 64, 1)
    const ids = [...prefix, verbalizer.words[i][0].ids[0], ...suffix]
    const positions = Int32Array.from(ids.slice(1).flatMap((_, k) => [0, k]))
    const logits = await model.logitsAt({ inputIds: Int32Array.from(ids), batchSize: 1, seqLen: ids.length }, positions)
    const V = model.info.config.vocabSize
    for (let k = 0; k + 1 < ids.length; k++) { sum -= logp(logits.subarray(k * V, (k + 1) * V), ids[k + 1]); n++ }
  }
  t.equal(loss.vocabTargets!.length, n, 'every next token is a target')
  t.ok(Math.abs(r.loss - sum / n) < 1e-4, `loss ${r.loss.toFixed(6)} vs ${(sum / n).toFixed(6)}`)
})

t.test("PET steps on a causal LM: 'verbalizer' is the cross-entropy over the label words at the answer position", async t => {
  const model = await MaskedLM.load(miniGpt)
  t.teardown(() => model.dispose())
  const pattern = new Pattern('感觉如何？{text}[MASK]满意。')
  const verbalizer = new Verbalizer(sentiment, model.tokenizer)
  const steps = petSteps(model, pattern, verbalizer, examples, [], { ...lossOptions, labelLoss: 'verbalizer', alpha: 1 })
  const { batch, loss } = steps.buildStep(steps.items, new Rng(1))
  t.equal(loss.vocabTargets, undefined, 'alpha 1: no LM term')
  model.setTrainable({ kind: 'all' }, { lr: 1e-4 })
  const r = await model.lossAndGrads(batch, loss, false)
  let sum = 0
  const cands = verbalizer.words.map(w => w[0].ids[0])
  for (const [i, e] of examples.entries()) {
    const { prefix } = pattern.encodeCausal(e.fields, model.tokenizer, 64, 1)
    const logits = await model.logitsAt({ inputIds: Int32Array.from(prefix), batchSize: 1, seqLen: prefix.length }, Int32Array.from([0, prefix.length - 1]))
    const z = cands.map(c => logits[c])
    const m = Math.max(...z)
    sum -= z[i] - m - Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0))
  }
  t.ok(Math.abs(r.loss - sum / 2) < 1e-4, `loss ${r.loss.toFixed(6)} vs ${(sum / 2).toFixed(6)}`)
})

t.test('a causal LM refuses what only a masked LM does, with a PetError and nothing written', async t => {
  const model = await MaskedLM.load(miniGpt)
  t.teardown(() => model.dispose())
  const pattern = new Pattern('{text}总之，[MASK]好。')
  t.throws(() => petSteps(model, pattern, new Verbalizer(sentiment, model.tokenizer), examples, [], { ...lossOptions, labelLoss: 'vocab', maskRate: 0.15 }),
    { name: 'PetError', message: /random masking is a masked LM's/ })
  t.throws(() => petSteps(model, pattern, new Verbalizer({ positive: ['满意'], negative: ['不'] }, model.tokenizer), examples, [], { ...lossOptions, labelLoss: 'verbalizer' }),
    { name: 'PetError', message: /one-token words.*labelLoss 'vocab'/ })
  const out = path.join(dir, 'refused')
  await t.rejects(pretrain({ model: miniGpt, data: trainFile, maskRate: 0.15, out }), { name: 'PetError', message: /LM objective/ })
  await t.rejects(trainPet({ model: miniGpt, train: trainFile, pattern: '{text}总之，[MASK]好。', verbalizer: sentiment, maskRate: 0.1, out }), { name: 'PetError', message: /maskRate 0.1/ })
  t.notOk(fs.existsSync(path.join(out, 'best')), 'no run was written')
})

t.test('P-tuning layouts for a causal LM: the prompt around the text, the answer last', async t => {
  t.equal(promptPattern(8, 'around', 1, true), '[unused1][unused2][unused3][unused4]{text}[unused5][unused6][unused7][unused8][MASK]')
  t.equal(promptPattern(2, 'prefix', 1, true), '[unused1][unused2]{text}[MASK]')
  t.equal(promptPattern(2, 'suffix', 1, true), '{text}[unused1][unused2][MASK]')
})

let gptAdapter = ''
let bertAdapter = ''
t.test('pet ptune on zh-mini-gpt (frozen): an adapter on the unchanged base, predict reproduces dev', async t => {
  const before = hashTensors(await MaskedLM.load(miniGpt).then(m => { t.teardown(() => m.dispose()); return m }))
  const out = path.join(dir, 'ptune-gpt')
  const r = pet('ptune', '--model', miniGpt, '--train', trainFile, '--dev', devFile, '--test', devFile, '--verbalizer', JSON.stringify(sentiment),
    '--epochs', '2', '--batch-size', '8', '--out', out, '--json')
  t.equal(r.status, 0, r.stderr)
  const s = lastJson(r.stdout)
  t.equal(s.pattern, '[unused1][unused2][unused3][unused4]{text}[unused5][unused6][unused7][unused8][MASK]', "the seed's GPT template")
  t.equal(s.test_accuracy, s.dev_accuracy, 'the adapter on the base model reproduces the dev accuracy')
  t.ok(isAccuracyOver(s.dev_accuracy, 60), `dev accuracy k/60 (${s.dev_accuracy})`)
  gptAdapter = s.adapter
  const cfg = JSON.parse(fs.readFileSync(path.join(gptAdapter, 'adapter_config.json'), 'utf8'))
  t.equal(cfg.base_model_family, 'gpt2')
  t.same(fs.readdirSync(path.join(out, 'best')), ['adapter'], 'the frozen checkpoint is the adapter alone')
  const m = await MaskedLM.load(miniGpt)
  t.teardown(() => m.dispose())
  const after = hashTensors(m)
  for (const [name, h] of before) t.equal(after.get(name), h, `${name}: the base is unchanged`)
  const p = pet('predict', '--model', miniGpt, '--prompt', gptAdapter, '--data', devFile, '--json')
  t.equal(p.status, 0, p.stderr)
  t.equal(lastJson(p.stdout).accuracy, s.dev_accuracy, 'predict with --prompt')
})

t.test('a GPT adapter is refused on zh-mini-mlm and a BERT adapter on zh-mini-gpt, with a clear message', async t => {
  const r = await ptune({ model: miniMlm, train: trainFile, verbalizer: sentiment, epochs: 1, out: path.join(dir, 'ptune-bert') })
  bertAdapter = r.adapter!
  const bert = await MaskedLM.load(miniMlm)
  t.teardown(() => bert.dispose())
  t.throws(() => loadAdapter(bert, gptAdapter), { name: 'PetError', code: 'EADAPTER', message: /trained on a gpt2 model.*is a bert model/ })
  const gpt = await MaskedLM.load(miniGpt)
  t.teardown(() => gpt.dispose())
  t.throws(() => loadAdapter(gpt, bertAdapter), { name: 'PetError', code: 'EADAPTER', message: /trained on a bert model.*is a gpt2 model/ })
  const wrong = pet('predict', '--model', miniMlm, '--prompt', gptAdapter, '--data', devFile)
  t.equal(wrong.status, 1)
  t.match(wrong.stderr, /trained on a gpt2 model/)
})

t.test('P-tuning a GPT with an LSTM prompt encoder, and in full mode', async t => {
  const lstm = await ptune({ model: miniGpt, train: trainFile, dev: devFile, verbalizer: sentiment, encoder: 'lstm', epochs: 1, batchSize: 8, out: path.join(dir, 'ptune-lstm') })
  const c = await Classifier.load(lstm.adapter!)
  t.teardown(() => c.dispose())
  const preds = await c.classify((fs.readFileSync(devFile, 'utf8').trim().split('\n').map(l => JSON.parse(l))))
  const gold = fs.readFileSync(devFile, 'utf8').trim().split('\n').map(l => JSON.parse(l).label)
  t.equal(preds.filter((p, i) => p.label === gold[i]).length / 60, lstm.devAccuracy, 'the LSTM adapter loads as a classifier and reproduces dev')
  const full = await ptune({ model: miniGpt, train: trainFile, dev: devFile, verbalizer: sentiment, mode: 'full', epochs: 1, batchSize: 8, out: path.join(dir, 'ptune-full') })
  t.equal(full.adapter, null)
  const m = await MaskedLM.load(full.model)
  t.teardown(() => m.dispose())
  t.equal(m.family, 'gpt2', 'the full model saves as a GPT-2 checkpoint')
})

t.test('pretrain a GPT on the LM objective: the loss is the mean next-token cross-entropy and falls', async t => {
  const r = await pretrain({ model: miniGpt, data: trainFile, epochs: 3, lr: 1e-3, batchSize: 8, out: path.join(dir, 'pretrain-gpt') })
  t.equal(r.objective, 'lm')
  t.ok(r.history[2].loss < r.history[0].loss, `LM loss ${r.history.map(h => h.loss.toFixed(3)).join(' -> ')}`)
  const m = await MaskedLM.load(r.model)
  t.teardown(() => m.dispose())
  t.equal(m.family, 'gpt2')
})

t.test('finetune a GPT: the classifier reads the last non-padding token', async t => {
  const r = await finetune({ model: miniGpt, train: trainFile, dev: devFile, epochs: 1, batchSize: 8, out: path.join(dir, 'finetune-gpt') })
  t.ok(isAccuracyOver(r.devAccuracy, 60), `dev accuracy k/60 (${r.devAccuracy})`)
  const m = await MaskedLM.load(r.model)
  t.teardown(() => m.dispose())
  m.addClassifier(2)
  const tok = m.tokenizer
  const row = (text: string) => [tok.clsId, ...tok.encode(text), tok.sepId]
  const a = row('服务很好很满意')
  const b = row('房间太小了，不推荐，真的不好')
  const alone = await m.classify({ inputIds: Int32Array.from(a), batchSize: 1, seqLen: a.length })
  const T = b.length
  const ids = new Int32Array(2 * T)
  const mask = new Int32Array(2 * T)
  ids.set(a, 0); mask.fill(1, 0, a.length)
  ids.set(b, T); mask.fill(1, T, 2 * T)
  const padded = await m.classify({ inputIds: ids, attentionMask: mask, batchSize: 2, seqLen: T })
  t.ok(Math.abs(padded[0] - alone[0]) < 1e-5 && Math.abs(padded[1] - alone[1]) < 1e-5, 'padding after the text changes nothing')
  // a causal LM's first token sees nothing else: the logits must depend on the text's last token
  const c = [...a.slice(0, -2), tok.tokenToId('差')!, tok.sepId]
  const changed = await m.classify({ inputIds: Int32Array.from(c), batchSize: 1, seqLen: c.length })
  t.ok(Math.abs(changed[0] - alone[0]) > 1e-4, 'the logits follow the end of the text')
})
