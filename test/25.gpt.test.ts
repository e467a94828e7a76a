// GPT-2 (a causal LM) through the same core: parity with HF transformers on tiny-gpt2 and zh-mini-gpt, and
// zero-shot LM prompts (the answer as the continuation of the pattern's prefix) against HF's counts.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { MaskedLM } from '../lib/model'
import { PetError } from '../lib/errors'
import { Pattern } from '../lib/pet/pattern'
import { Verbalizer } from '../lib/pet/verbalizer'
import { scoreExamples } from '../lib/pet/score'
import { defaultLabelScoreOptions } from '../lib/pet/label-scores'
import { zeroShot } from '../lib/workflows/zero-shot'
import { fixtures, sentiment, shared, tmpDir } from './helpers/paths'
import { readSafetensors } from '../lib/safetensors'
import { allPositions, maxAbs, maxAbsDiff, toInt32 } from './helpers/tensors'

const tinyGpt2 = path.join(fixtures, 'tiny-gpt2')
const miniGpt = path.join(shared, 'models/zh-mini-gpt')
const ref = readSafetensors(path.join(fixtures, 'tiny_gpt2_reference.safetensors'))
const get = (name: string) => ref.get(name)!
const hf = JSON.parse(fs.readFileSync(path.join(fixtures, 'zh_mini_gpt_reference.json'), 'utf8')).zero_shot_sentiment_test as
  Record<string, { pattern: string, correct: number, of: number }>

t.test('tiny-gpt2: last hidden state (after ln_f) and logits at every position match HF within 1e-5, padding in the batch', async t => {
  const model = await MaskedLM.load(tinyGpt2)
  t.teardown(() => model.dispose())
  t.equal(model.family, 'gpt2')
  t.ok(model.isCausal)
  const [B, T] = get('input_ids').shape
  const mask = toInt32(get('attention_mask'))
  t.ok(mask.some(x => x === 0), 'the reference batch has padding')
  const batch = { inputIds: toInt32(get('input_ids')), attentionMask: mask, batchSize: B, seqLen: T }
  const emb = await model.hiddenStates(batch, 'embeddings')
  t.ok(maxAbsDiff(emb, get('embedding_output').data as Float32Array) <= 1e-5, 'embeddings (wte + wpe)')
  const last = await model.hiddenStates(batch, 'last')
  const errLast = maxAbsDiff(last, get('last_hidden').data as Float32Array)
  t.ok(errLast <= 1e-5, `last hidden max abs error ${errLast.toExponential(2)}`)
  const positions = allPositions(B, T)
  const logits = await model.logitsAt(batch, positions)
  const refLogits = get('logits').data as Float32Array
  const errLogits = maxAbsDiff(logits, refLogits)
  t.ok(errLogits <= 1e-5, `logits max abs error ${errLogits.toExponential(2)}`)
  t.ok(maxAbs(refLogits) > 0.1, 'the reference is not trivially zero')
})

t.test('tiny-gpt2: P-tuning LM loss over the whole sequence and the gradient of the prompt rows match HF within 1e-5 relative', async t => {
  const model = await MaskedLM.load(tinyGpt2)
  t.teardown(() => model.dispose())
  const ids = toInt32(get('ptuning_input_ids'))
  const n = ids.length
  t.equal(ids[n - 1], model.tokenizer.tokenToId('很'), 'the template ends with the label word')
  const batch = { inputIds: ids, batchSize: 1, seqLen: n }
  model.setTrainable({ kind: 'rows', rows: Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) }, { lr: 1e-3 })
  // HF's causal LM loss: the token at i + 1 predicted from position i, for i = 0 .. n - 2.
  const vocabPositions = new Int32Array((n - 1) * 2)
  for (let i = 0; i < n - 1; i++) vocabPositions[i * 2 + 1] = i
  const r = await model.lossAndGrads(batch, { vocabPositions, vocabTargets: ids.slice(1) }, false)
  const refLoss = (get('ptuning_loss').data as Float32Array)[0]
  t.ok(Math.abs(r.loss - refLoss) / Math.abs(refLoss) <= 1e-5, `loss ${r.loss} vs ${refLoss}`)
  const refGrad = get('ptuning_grad_rows_1_8').data as Float32Array
  const rel = maxAbsDiff(r.grads.rows, refGrad) / maxAbs(refGrad)
  t.ok(rel <= 1e-5, `prompt-row gradient max relative error ${rel.toExponential(2)} (tied head: input and output sides)`)
  t.same(Object.keys(r.grads), ['rows'], 'only the prompt rows are trainable')
})

t.test('zh-mini-gpt: full-vocabulary logits after 16 prefixes match HF within 1e-4, prefixes built identically', async t => {
  const inputs = JSON.parse(fs.readFileSync(path.join(fixtures, 'mini_gpt_test16_inputs.json'), 'utf8')) as
    { pattern: string, prefix_ids: number[][], texts: string[] }
  const refLogits = readSafetensors(path.join(fixtures, 'mini_gpt_test16_last_logits.safetensors'))
  const refData = [...refLogits.values()][0].data as Float32Array
  const model = await MaskedLM.load(miniGpt)
  t.teardown(() => model.dispose())
  const pattern = new Pattern(inputs.pattern.replace('{}', '{text}')) // the suffix counts in the 128 too
  const V = model.info.config.vocabSize
  for (let i = 0; i < 16; i++) {
    const { prefix } = pattern.encodeCausal({ text: inputs.texts[i] }, model.tokenizer, 128, 1)
    t.same(prefix, inputs.prefix_ids[i], `prefix ${i}: token ids equal HF's`)
    const logits = await model.logitsAt({ inputIds: Int32Array.from(prefix), batchSize: 1, seqLen: prefix.length },
      Int32Array.from([0, prefix.length - 1]))
    const err = maxAbsDiff(logits, refData.subarray(i * V, (i + 1) * V))
    t.ok(err <= 1e-4, `prefix ${i}: max abs error ${err.toExponential(2)}`)
  }
})

/** A word's summed log-probability after the prefix (and the suffix after it), from a pass of its own. */
async function ownPassLogp (model: MaskedLM, prefix: number[], rest: number[]): Promise<number> {
  const seq = [...prefix, ...rest]
  const V = model.info.config.vocabSize
  const positions = new Int32Array(rest.length * 2)
  for (let k = 0; k < rest.length; k++) positions[k * 2 + 1] = prefix.length - 1 + k
  const logits = await model.logitsAt({ inputIds: Int32Array.from(seq), batchSize: 1, seqLen: seq.length }, positions)
  let s = 0
  for (let k = 0; k < rest.length; k++) {
    const row = logits.subarray(k * V, (k + 1) * V)
    let m = -Infinity
    for (const x of row) m = Math.max(m, x)
    let z = 0
    for (const x of row) z += Math.exp(x - m)
    s += row[rest[k]] - m - Math.log(z)
  }
  return s
}

t.test('causal scoring: a word as one branch of a shared prefix equals scoring prefix + word on its own', async t => {
  const model = await MaskedLM.load(miniGpt)
  t.teardown(() => model.dispose())
  const pattern = new Pattern('{text}总之，[MASK]好。')
  // words of different lengths, several per label, so branches of 1 and 2 tokens (plus the suffix) share a pass
  const verbalizer = new Verbalizer({ positive: ['很', '非常'], negative: ['不'] }, model.tokenizer)
  const examples = ['服务很好很满意', '房间太小了，不推荐'].map((text, i) => ({ fields: { text }, source: `example ${i}` }))
  for (const continuation of ['word', 'word+suffix'] as const) {
    const got = await scoreExamples(model, pattern, verbalizer, examples,
      { maxLength: 64, labelScores: { ...defaultLabelScoreOptions, multiToken: 'sum', continuation } })
    for (const [i, e] of examples.entries()) {
      const { prefix, suffix } = pattern.encodeCausal(e.fields, model.tokenizer, 64, 2)
      const logp = (word: number[]) => ownPassLogp(model, prefix, [...word, ...(continuation === 'word+suffix' ? suffix : [])])
      const ids = (w: string) => verbalizer.words.flat().find(x => x.text === w)!.ids
      const positive = ((await logp(ids('很'))) + (await logp(ids('非常')))) / 2
      const negative = await logp(ids('不'))
      t.ok(Math.abs(got[i].scores[0] - positive) <= 1e-4 && Math.abs(got[i].scores[1] - negative) <= 1e-4,
        `${continuation} example ${i}: ${got[i].scores.map(x => x.toFixed(4)).join(', ')} vs ${positive.toFixed(4)}, ${negative.toFixed(4)}`)
    }
  }
})

t.test('causal scoring with more distinct first tokens than one row holds (20 labels): each label as its own pass', async t => {
  const model = await MaskedLM.load(miniGpt)
  t.teardown(() => model.dispose())
  const pattern = new Pattern('{text}这是[MASK]。')
  // 20 one- and two-character words with distinct first characters: the prefix's last token scores 20 candidates,
  // more than the 8 a row of the scoring call holds, so that read spans several rows
  const words = ['好', '坏', '大', '小', '新', '旧', '快', '慢', '高', '低', '美食', '体育', '音乐', '电影', '旅游', '教育', '科技', '汽车', '房产', '游戏']
  const verbalizer = new Verbalizer(Object.fromEntries(words.map((w, i) => [`l${i}`, [w]])), model.tokenizer)
  t.equal(new Set(verbalizer.words.map(ws => ws[0].ids[0])).size, 20, '20 distinct first tokens')
  const examples = ['服务很好很满意', '房间太小了，不推荐', '今天的比赛很精彩'].map((text, i) => ({ fields: { text }, source: `example ${i}` }))
  const got = await scoreExamples(model, pattern, verbalizer, examples,
    { maxLength: 64, labelScores: { ...defaultLabelScoreOptions, multiToken: 'sum' } })
  let worst = 0
  for (const [i, e] of examples.entries()) {
    const { prefix } = pattern.encodeCausal(e.fields, model.tokenizer, 64, 2)
    for (const [j, ws] of verbalizer.words.entries()) worst = Math.max(worst, Math.abs(got[i].scores[j] - await ownPassLogp(model, prefix, ws[0].ids)))
  }
  t.ok(worst <= 1e-4, `60 label scores within 1e-4 of their own passes (max |diff| ${worst.toExponential(2)})`)
})

t.test('causal scoring rejects what a left-to-right LM cannot do, with a PetError', async t => {
  const model = await MaskedLM.load(miniGpt)
  t.teardown(() => model.dispose())
  const verbalizer = new Verbalizer({ positive: ['很'], negative: ['不'] }, model.tokenizer)
  const examples = [{ fields: { text: '很好' }, source: 'example 0' }]
  await t.rejects(scoreExamples(model, new Pattern('[MASK][MASK]{text}'), verbalizer, examples, { maxLength: 64 }),
    { name: 'PetError', message: /2 \[MASK\].*causal LM's pattern has one/ })
  await t.rejects(scoreExamples(model, new Pattern('{text}[MASK]'), verbalizer, examples, { maxLength: 64, labelScores: { ...defaultLabelScoreOptions, multiToken: 'iterative' } }),
    { name: 'PetError', message: /iterative.*causal LM/ })
  await t.rejects(scoreExamples(model, new Pattern('{text}[MASK]'), verbalizer, examples, { maxLength: 64, labelScores: { ...defaultLabelScoreOptions, continuation: 'rest' as never } }),
    PetError)
  const data = path.join(tmpDir(), 'one.jsonl')
  fs.writeFileSync(data, '{"text":"很好","label":"positive"}\n')
  await t.rejects(zeroShot({ model: miniGpt, data, pattern: '{text}[MASK]', verbalizer: { positive: ['很'], negative: ['不'] }, continuation: 'all' as never }),
    { name: 'PetError', message: /continuation/ })
})

// HF's counts on the whole sentiment test set (2,111), per pattern and per scoring form.
for (const [key, spec] of Object.entries(hf)) {
  const continuation = key.endsWith('label+suffix') ? 'word+suffix' : 'word'
  t.test(`zh-mini-gpt zero-shot ${key} (${spec.pattern}), continuation ${continuation}: ${spec.correct}/${spec.of} as HF`, async t => {
    const r = await zeroShot({
      model: miniGpt,
      data: path.join(sentiment, 'test.jsonl'),
      pattern: spec.pattern.replace('{}', '{text}'),
      verbalizer: { positive: ['很'], negative: ['不'] },
      maxLength: 128,
      continuation
    })
    t.equal(r.n, spec.of)
    t.equal(r.correct, spec.correct)
  })
}
t.ok(Object.keys(hf).length === 4, 'the fixture has both patterns in both forms')
