// Label words of different token counts: one cloze per distinct length, each word scored by its own tokens'
// log-probabilities there; the same rule in training; clear errors for words that cannot work.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { maskPositionPairs, padBatch } from '../lib/batch'
import { toExamples } from '../lib/data/examples'
import { MaskedLM } from '../lib/model'
import { applyRule, scoringRule } from '../lib/pet/label-scores'
import { Pattern } from '../lib/pet/pattern'
import { scoreExamples } from '../lib/pet/score'
import { Verbalizer } from '../lib/pet/verbalizer'
import { train } from '../lib/index'
import { isAccuracyOver } from './helpers/accuracy'
import { miniMlm, sentiment, shared, tmpDir } from './helpers/paths'

const texts = ['这家酒店干净又安静，下次还来。', '房间又小又吵，服务也差。', '位置不错，早餐一般。']
const logSoftmax = (xs: Float32Array) => { const m = Math.max(...xs); const z = Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0)) + m; return (i: number) => xs[i] - z }

t.test('words of 1 and 3 tokens: each label scored from its own tokens in its own cloze, as computed by hand', async t => {
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  const tok = model.tokenizer
  const V = model.info.config.vocabSize
  const pattern = new Pattern('这次体验[MASK]。{text}')
  const verbalizer = new Verbalizer({ positive: ['好'], negative: ['不满意'] }, tok)
  t.same(verbalizer.lengths, [1, 3])
  const examples = toExamples(texts)
  let passes = 0
  const counting = new Proxy(model, {
    get (target, key) {
      if (key === 'scoreCandidates') return (...a: Parameters<MaskedLM['scoreCandidates']>) => { passes++; return target.scoreCandidates(...a) }
      const v = Reflect.get(target, key, target)
      return typeof v === 'function' ? v.bind(target) : v
    }
  })
  const sum = await scoreExamples(counting, pattern, verbalizer, examples, { batchSize: 2, labelScores: { manyToOne: 'mean', multiToken: 'sum', score: 'logit' } })
  t.equal(passes, 2 * 2, 'one encoder pass per batch per distinct length (2 batches x 2 lengths), not per label')
  const mean = await scoreExamples(model, pattern, verbalizer, examples, { labelScores: { manyToOne: 'mean', multiToken: 'mean', score: 'logit' } })
  t.same(await scoreExamples(model, pattern, verbalizer, examples), mean, 'the default (auto) normalises by length when lengths differ')
  for (const [i, text] of texts.entries()) {
    const expected = verbalizer.words.map(([w]) => {
      const enc = pattern.encode({ text }, tok, 128, w.ids.length)
      t.equal(enc.maskPositions.length, w.ids.length, `'${w.text}': ${w.ids.length} [MASK]s`)
      return model.logitsAt({ inputIds: Int32Array.from(enc.inputIds), batchSize: 1, seqLen: enc.inputIds.length }, Int32Array.from(enc.maskPositions.flatMap(c => [0, c])))
        .then(logits => w.ids.reduce((s, id, k) => s + logSoftmax(logits.subarray(k * V, (k + 1) * V))(id), 0))
    })
    const byHand = await Promise.all(expected)
    byHand.forEach((x, l) => {
      t.ok(Math.abs(sum[i].scores[l] - x) < 1e-4, `${text} ${verbalizer.labels[l]}: sum ${sum[i].scores[l].toFixed(5)} = ${x.toFixed(5)} by hand`)
      const n = verbalizer.words[l][0].ids.length
      t.ok(Math.abs(mean[i].scores[l] - x / n) < 1e-4, `${verbalizer.labels[l]}: mean ${mean[i].scores[l].toFixed(5)} = ${(x / n).toFixed(5)}`)
    })
  }
  // iterative decoding: a 1-token word is its log-probability, a 3-token one fills its slots one at a time
  const it = await scoreExamples(model, pattern, verbalizer, examples, { labelScores: { manyToOne: 'mean', multiToken: 'iterative', score: 'logit' } })
  it.forEach((p, i) => t.ok(Math.abs(p.scores[0] - sum[i].scores[0]) < 1e-5, 'iterative = one pass for the 1-token word'))
})

t.test('labels of one length: exactly today\'s scores (one [MASK] spans the word = the pattern with k [MASK]s)', async t => {
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  const tnews = path.join(shared, 'datasets/fewclue/tnews')
  const names = fs.readFileSync(path.join(tnews, 'label_index2en2zh.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l).label_zh as string)
  const verbalizer = new Verbalizer(Object.fromEntries(names.map(n => [n, [n]])), model.tokenizer)
  const examples = toExamples(fs.readFileSync(path.join(tnews, 'dev_0.jsonl'), 'utf8').trim().split('\n').slice(0, 24).map(l => JSON.parse(l)))
  for (const multiToken of ['auto', 'sum', 'mean', 'iterative'] as const) {
    const o = { labelScores: { manyToOne: 'mean' as const, multiToken, score: 'logit' as const } }
    const one = await scoreExamples(model, new Pattern('[MASK]新闻：{text}'), verbalizer, examples, o)
    const two = await scoreExamples(model, new Pattern('[MASK][MASK]新闻：{text}'), verbalizer, examples, o)
    t.same(one, two, `${multiToken}: identical scores`)
  }
  // (the HF-parity counts of P1-P5 on the sentiment test set: 30.pet.zero-shot)
})

t.test('the training loss reads every cloze with the same rule', async t => {
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  const tok = model.tokenizer
  const pattern = new Pattern('这次体验[MASK]。{text}')
  const verbalizer = new Verbalizer({ positive: ['好', '很满意'], negative: ['不满意', '差'], neutral: ['一般般'] }, tok)
  for (const multiToken of ['sum', 'mean'] as const) {
    const rule = scoringRule(verbalizer, { manyToOne: 'mean', multiToken, score: 'logit' })
    t.same(rule.clozes, [1, 3])
    const clozes = rule.clozes.map(k => texts.map(text => pattern.encode({ text }, tok, 128, k)))
    // rows: example by example, a row per cloze; slots in the rule's order
    const rows = texts.flatMap((_, b) => clozes.map(c => c[b]))
    const batch = padBatch(rows, tok.padId)
    const positions = Int32Array.from(rows.flatMap((e, r) => e.maskPositions.flatMap(c => [r, c])))
    const targets = [0, 1, 2]
    let expected = 0
    for (const [b] of texts.entries()) {
      const logits: number[] = []
      const logZ: number[] = []
      for (const c of clozes) {
        const r = await model.scoreCandidates(padBatch([c[b]], tok.padId), maskPositionPairs([c[b]]), rule.candidates)
        logits.push(...r.logits)
        logZ.push(...r.logZ)
      }
      const s = applyRule(rule, logits, logZ)
      const m = Math.max(...s)
      expected += (m + Math.log(s.reduce((a, x) => a + Math.exp(x - m), 0)) - s[targets[b]]) / texts.length
    }
    model.setTrainable({ kind: 'all' }, { lr: 1e-5 })
    const native = await model.lossAndGrads(batch, {
      labelPositions: positions, labelCandidates: Int32Array.from(rule.candidates), wordMatrix: rule.wordMatrix, wordLabel: rule.wordLabel,
      labelTargets: Int32Array.from(targets), labelScore: rule.logprob ? 'logprob' : 'logit', labelAggregate: rule.logsumexp ? 'logsumexp' : 'mean'
    }, false)
    t.ok(Math.abs(native.labelLoss - expected) < 1e-4, `${multiToken}: native label loss ${native.labelLoss.toFixed(6)} = CE of inference's scores ${expected.toFixed(6)}`)
  }
})

t.test('PET trains with words of different lengths (both losses)', async t => {
  const lines = fs.readFileSync(path.join(sentiment, 'train.jsonl'), 'utf8').split('\n').slice(0, 16).map(l => JSON.parse(l))
  const dev = fs.readFileSync(path.join(sentiment, 'valid.jsonl'), 'utf8').split('\n').slice(0, 40).map(l => JSON.parse(l))
  // the labels stored as codes, named through a label-map file
  const mapFile = path.join(tmpDir(), 'labels.json')
  fs.writeFileSync(mapFile, JSON.stringify({ p: 'positive', n: 'negative' }))
  const code = (x: { text: string, label: string }) => ({ text: x.text, label: x.label === 'positive' ? 'p' : 'n' })
  for (const labelLoss of ['verbalizer', 'vocab'] as const) {
    const r = await train({ train: lines.map(code), dev: dev.map(code), labelMap: mapFile, pattern: '这次体验[MASK]。{text}', verbalizer: { positive: ['好', '很满意'], negative: ['不满意'] }, labelLoss, epochs: 2, batchSize: 8, out: path.join(tmpDir(), labelLoss) })
    t.ok(r.history.every(h => Number.isFinite(h.loss)), `${labelLoss}: finite losses ${r.history.map(h => h.loss.toFixed(3))}`)
    t.ok(isAccuracyOver(r.devAccuracy, 40), `${labelLoss}: dev accuracy k/40 (${r.devAccuracy})`)
    // the report's per-label table: the best model on dev (no test split here), summing to its dev accuracy
    const b = r.labelBreakdown!
    t.equal(b.split, 'dev')
    t.same(b.perLabel.map(l => l.label), ['positive', 'negative'])
    t.equal(b.perLabel.reduce((a, l) => a + l.n, 0), 40)
    t.equal(b.perLabel.reduce((a, l) => a + l.correct, 0) / 40, r.devAccuracy, 'per-label counts add up to the dev accuracy')
    t.equal(b.confusedPairs.reduce((a, p) => a + p.count, 0), 40 - b.perLabel.reduce((a, l) => a + l.correct, 0), 'every error is in a confused pair')
    t.match(fs.readFileSync(r.report.md, 'utf8'), /## Accuracy per label \(dev\)[\s\S]*## Most confused pairs \(dev\)/)
  }
  await t.rejects(train({ train: lines.map(code), labelMap: path.join(tmpDir(), 'none.json'), pattern: '[MASK]。{text}', verbalizer: { positive: ['好'], negative: ['差'] } }),
    /cannot read the label map .*none\.json: ENOENT/)
})

t.test('words that cannot work are clear errors naming the label', async t => {
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  const tok = model.tokenizer
  t.throws(() => new Verbalizer({ a: ['好'], b: ['😀'] }, tok), /unknown verbalizer token '😀' for label 'b'.*\[UNK\]/)
  t.throws(() => new Verbalizer({ a: ['好'], b: [' '] }, tok), /label 'b' has an empty word/)
  t.throws(() => new Verbalizer({ a: ['好'], b: [] }, tok), /label 'b' has no words/)
  t.throws(() => new Verbalizer({ a: ['好', '满意'], b: ['满意'] }, tok), /'满意' is used for both 'a' and 'b'/)
  const v = new Verbalizer({ short: ['好'], long: ['休闲益智游戏'] }, tok)
  await t.rejects(scoreExamples(model, new Pattern('一二三四五[MASK]{text}'), v, toExamples(['文本']), { maxLength: 10 }),
    /words of 6 tokens \(label 'long'\) do not fit/)
  await t.rejects(scoreExamples(model, new Pattern('[MASK][MASK]{text}'), v, toExamples(['文本'])),
    /has 2 \[MASK\] but the verbalizer words have 1 or 6 token\(s\)/)
})

t.test('a task with 120 labels of 1-5 tokens trains, evaluates, ensembles and distils', async t => {
  const model = await MaskedLM.load(miniMlm)
  const chars: string[] = []
  for (let id = 0; id < model.info.config.vocabSize && chars.length < 600; id++) {
    const tk = model.tokenizer.idToToken(id)
    if (tk !== undefined && /^[\u4e00-\u9fff]$/.test(tk)) chars.push(tk)
  }
  model.dispose()
  // 120 distinct names, lengths 1..5 in turn, from a fixed walk through the vocabulary's characters
  const names = Array.from({ length: 120 }, (_, i) => Array.from({ length: 1 + (i % 5) }, (_, k) => chars[(i * 7 + k * 131) % chars.length]).join(''))
  t.equal(new Set(names).size, 120)
  const verbalizer = Object.fromEntries(names.map(n => [n, [n]]))
  const texts = fs.readFileSync(path.join(sentiment, 'train.jsonl'), 'utf8').split('\n').slice(0, 180).map(l => JSON.parse(l).text as string)
  const records = texts.map((text, i) => ({ text, label: names[i % 120] }))
  const dir = tmpDir()
  const patterns = ['这是[MASK]。{text}', '{text}[MASK]']
  const { ensemble, distill } = await import('../lib/index')
  const en = await ensemble({ train: records.slice(0, 120), dev: records.slice(120), unlabeled: texts.slice(0, 30), patterns, verbalizer, epochs: 1, batchSize: 16, out: path.join(dir, 'ens') })
  t.equal(en.labels.length, 120)
  t.ok(en.patterns.every(p => isAccuracyOver(p.devAccuracy, 60)), `each member trained and was scored on the 60 dev records: k/60 (${en.patterns.map(p => p.devAccuracy)})`)
  t.ok(isAccuracyOver(en.devAccuracy, 60), `the ensemble's dev accuracy is k/60 (${en.devAccuracy})`)
  const soft = fs.readFileSync(en.softLabels!, 'utf8').trim().split('\n').map(l => JSON.parse(l))
  t.ok(soft.length === 30 && soft.every(s => s.logits.length === 120 && s.logits.every(Number.isFinite)), '30 soft labels of 120 finite scores')
  const ds = await distill({ softLabels: en.softLabels!, labels: en.labels, dev: records.slice(120), distillEpochs: 1, out: path.join(dir, 'ds') })
  t.equal(ds.labels.length, 120)
  t.equal(ds.labelBreakdown?.perLabel.length, 120, 'the report has a row per label')
  const md = fs.readFileSync(ds.report.md, 'utf8')
  t.ok(/## Most confused pairs \(dev\)/.test(md) && md.split('\n').filter(l => l.startsWith('| ') && / \| \d+ \|$/.test(l)).length <= 120 + 10 + 2, 'confused pairs stay a short list')
})
