// Zero-shot on the sentiment test set with zh-mini-mlm: the accuracies of the HF reference, to the sentence.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { toExamples, type DataRecord } from '../lib/data/examples'
import { readJsonl } from '../lib/data/jsonl'
import { MaskedLM } from '../lib/model'
import { Pattern } from '../lib/pet/pattern'
import { accuracy, scoreExamples } from '../lib/pet/score'
import { Verbalizer, type VerbalizerSpec } from '../lib/pet/verbalizer'
import { applyRule, scoringRule, type LabelScoreOptions } from '../lib/pet/label-scores'
import { maskPositionPairs, padBatch } from '../lib/batch'
import { miniMlm, sentiment } from './helpers/paths'

const patterns: Record<string, string> = {
  P1: '[MASK]满意。{text}',
  P2: '{text}[MASK]满意。',
  P3: '[MASK]好。{text}',
  P4: '[MASK]理想。{text}',
  P5: '感觉如何？[MASK]满意。{text}'
}
const reference = JSON.parse(fs.readFileSync(path.join(miniMlm, 'reference_results.json'), 'utf8')).zero_shot_sentiment as
  Record<string, { test: number }>

t.test('zero-shot P1-P5 on sentiment test equal the HF reference exactly', async t => {
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  const file = path.join(sentiment, 'test.jsonl')
  const records = readJsonl(file).map(r => r.value as DataRecord)
  const verbalizer = new Verbalizer({ positive: ['很'], negative: ['不'] }, model.tokenizer)
  for (const [name, source] of Object.entries(patterns)) {
    const pattern = new Pattern(source)
    const examples = toExamples(records, { fields: pattern.fields, source: file })
    const preds = await scoreExamples(model, pattern, verbalizer, examples, { batchSize: 64 })
    const ev = accuracy(examples, preds, verbalizer)
    t.equal(ev.n, 2111)
    t.equal(ev.correct, Math.round(reference[name].test * 2111), `${name}: ${ev.accuracy.toFixed(4)} vs reference ${reference[name].test.toFixed(4)}`)
  }
})

t.test('batching does not change the predictions', async t => {
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  const file = path.join(sentiment, 'test.jsonl')
  const records = readJsonl(file).slice(0, 40).map(r => r.value as DataRecord)
  const pattern = new Pattern(patterns.P1)
  const verbalizer = new Verbalizer({ positive: ['很'], negative: ['不'] }, model.tokenizer)
  const examples = toExamples(records, { fields: pattern.fields, source: file })
  const one = await scoreExamples(model, pattern, verbalizer, examples, { batchSize: 1 })
  const many = await scoreExamples(model, pattern, verbalizer, examples, { batchSize: 16 })
  t.same(many.map(p => p.label), one.map(p => p.label))
  let err = 0
  one.forEach((p, i) => p.scores.forEach((s, j) => { err = Math.max(err, Math.abs(s - many[i].scores[j])) }))
  t.ok(err < 1e-4, `label scores agree within ${err.toExponential(2)}`)
})

t.test('multi-token words: PET\'s iterative decoding, checked by hand with full-vocabulary logits', async t => {
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  const tok = model.tokenizer
  const pattern = new Pattern('[MASK][MASK]新闻：{text}')
  const verbalizer = new Verbalizer({ sports: ['体育'], finance: ['财经'] }, tok)
  const texts = ['中国女排三比零战胜对手', '央行宣布下调存款准备金率']
  const examples = texts.map((text, i) => ({ fields: { text }, source: `x:${i + 1}` }))
  const preds = await scoreExamples(model, pattern, verbalizer, examples, { labelScores: { manyToOne: 'mean', multiToken: 'iterative', score: 'logprob' } })
  const logSoftmax = (xs: Float32Array) => { const m = Math.max(...xs); const z = Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0)) + m; return (i: number) => xs[i] - z }
  for (const [i, e] of examples.entries()) {
    const enc = pattern.encode(e.fields, tok, 128)
    const expected = await Promise.all(verbalizer.words.map(async ([w]) => {
      const ids = [...enc.inputIds]
      const open = [0, 1]
      let total = 0
      for (let pass = 0; pass < 2; pass++) {
        const V = model.info.config.vocabSize
        const logits = await model.logitsAt({ inputIds: Int32Array.from(ids), batchSize: 1, seqLen: ids.length }, Int32Array.from(enc.maskPositions.flatMap(c => [0, c])))
        const lp = open.map(s => logSoftmax(logits.subarray(s * V, (s + 1) * V))(w.ids[s]))
        const k = lp.indexOf(Math.max(...lp))
        total += lp[k]
        ids[enc.maskPositions[open[k]]] = w.ids[open[k]]
        open.splice(k, 1)
      }
      return total
    }))
    preds[i].scores.forEach((s, l) => t.ok(Math.abs(s - expected[l]) < 1e-3, `example ${i}, ${verbalizer.labels[l]}: ${s.toFixed(4)} vs ${expected[l].toFixed(4)}`))
  }
  // The one-pass sum: a single forward pass with both slots masked, a word's score the sum over its slots of
  // the slot's log-probability of the word's token there — recomputed here from full-vocabulary logits.
  const onePass = await scoreExamples(model, pattern, verbalizer, examples, { labelScores: { manyToOne: 'mean', multiToken: 'sum', score: 'logprob' } })
  let differsFromIterative = 0
  for (const [i, e] of examples.entries()) {
    const enc = pattern.encode(e.fields, tok, 128)
    const V = model.info.config.vocabSize
    const logits = await model.logitsAt({ inputIds: Int32Array.from(enc.inputIds), batchSize: 1, seqLen: enc.inputIds.length }, Int32Array.from(enc.maskPositions.flatMap(c => [0, c])))
    const slotLogProb = enc.maskPositions.map((_, s) => logSoftmax(logits.subarray(s * V, (s + 1) * V)))
    const expected = verbalizer.words.map(([w]) => w.ids.reduce((sum, id, s) => sum + slotLogProb[s](id), 0))
    t.equal(onePass[i].scores.length, verbalizer.labels.length, `example ${i}: one score per label`)
    expected.forEach((x, l) => {
      const s = onePass[i].scores[l]
      t.ok(Math.abs(s - x) < 1e-4, `example ${i}, ${verbalizer.labels[l]}: one-pass sum ${s.toFixed(5)} vs ${x.toFixed(5)} by hand`)
      if (Math.abs(s - preds[i].scores[l]) > 1e-3) differsFromIterative++
    })
  }
  t.ok(differsFromIterative > 0, `the one-pass sum is not the iterative score (${differsFromIterative} of ${examples.length * verbalizer.labels.length} scores differ)`)
})

t.test('one scoring rule: the training loss scores labels exactly as inference does', async t => {
  // Inference applies scoringRule() in JS; the training loss hands the same word matrix to the native core. The
  // label loss the core computes (train = false: no dropout) must be the cross-entropy of inference's label scores.
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  const tok = model.tokenizer
  const cases: Array<[string, VerbalizerSpec, LabelScoreOptions]> = [
    ['[MASK]满意。{text}', { positive: ['很'], negative: ['不'] }, { manyToOne: 'mean', multiToken: 'sum', score: 'logit' }],
    ['[MASK]满意。{text}', { positive: ['很', '挺', '太'], negative: ['不', '没'] }, { manyToOne: 'mean', multiToken: 'sum', score: 'logit' }],
    ['[MASK]满意。{text}', { positive: ['很', '挺', '太'], negative: ['不', '没'] }, { manyToOne: 'logsumexp', multiToken: 'sum', score: 'logit' }],
    ['[MASK]满意。{text}', { positive: ['很'], negative: ['不'] }, { manyToOne: 'mean', multiToken: 'sum', score: 'logprob' }],
    ['[MASK][MASK]新闻：{text}', { 体育: ['体育'], 财经: ['财经'], 娱乐: ['娱乐', '八卦'] }, { manyToOne: 'mean', multiToken: 'mean', score: 'logit' }]
  ]
  const texts = ['这家酒店干净又安静。', '房间又小又吵。', '比赛今晚开始，主队首发阵容公布。']
  for (const [source, spec, o] of cases) {
    const pattern = new Pattern(source)
    const verbalizer = new Verbalizer(spec, tok)
    const rule = scoringRule(verbalizer, o)
    const encoded = texts.map(text => pattern.encode({ text }, tok, 64))
    const batch = padBatch(encoded, tok.padId)
    const positions = maskPositionPairs(encoded)
    const targets = texts.map((_, i) => i % verbalizer.labels.length)
    const r = await model.scoreCandidates(batch, positions, verbalizer.candidates)
    const S = rule.slots
    const C = rule.candidates.length
    let expected = 0
    encoded.forEach((_, b) => {
      const scores = applyRule(rule, r.logits.subarray(b * S * C, (b + 1) * S * C), r.logZ.subarray(b * S, (b + 1) * S))
      const m = Math.max(...scores)
      const lse = m + Math.log(scores.reduce((a, x) => a + Math.exp(x - m), 0))
      expected += (lse - scores[targets[b]]) / encoded.length
    })
    model.setTrainable({ kind: 'all' }, { lr: 1e-5 })
    const native = await model.lossAndGrads(batch, {
      labelPositions: positions, labelCandidates: Int32Array.from(rule.candidates), wordMatrix: rule.wordMatrix, wordLabel: rule.wordLabel,
      labelTargets: Int32Array.from(targets), labelScore: rule.logprob ? 'logprob' : 'logit', labelAggregate: rule.logsumexp ? 'logsumexp' : 'mean'
    }, false)
    t.ok(Math.abs(native.labelLoss - expected) < 1e-5 * Math.max(1, expected),
      `${source} ${JSON.stringify(o)}: native label loss ${native.labelLoss.toFixed(6)} = CE of inference's scores ${expected.toFixed(6)}`)
  }
})
