// Zero-shot on the sentiment test set with zh-mini-mlm: the accuracies of the HF reference, to the sentence.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { toExamples } from '../lib/data/examples'
import { readJsonl } from '../lib/data/jsonl'
import { MaskedLM } from '../lib/model'
import { Pattern } from '../lib/pet/pattern'
import { accuracy, scoreExamples } from '../lib/pet/score'
import { Verbalizer } from '../lib/pet/verbalizer'
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
  const records = readJsonl(file)
  const verbalizer = new Verbalizer({ positive: ['很'], negative: ['不'] }, model.tokenizer)
  for (const [name, source] of Object.entries(patterns)) {
    const pattern = new Pattern(source)
    const examples = toExamples(records, pattern.fields, file, { labelField: 'label' })
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
  const records = readJsonl(file).slice(0, 40)
  const pattern = new Pattern(patterns.P1)
  const verbalizer = new Verbalizer({ positive: ['很'], negative: ['不'] }, model.tokenizer)
  const examples = toExamples(records, pattern.fields, file, { labelField: 'label' })
  const one = await scoreExamples(model, pattern, verbalizer, examples, { batchSize: 1 })
  const many = await scoreExamples(model, pattern, verbalizer, examples, { batchSize: 16 })
  t.same(many.map(p => p.label), one.map(p => p.label))
  let err = 0
  one.forEach((p, i) => p.scores.forEach((s, j) => { err = Math.max(err, Math.abs(s - many[i].scores[j])) }))
  t.ok(err < 1e-4, `label scores agree within ${err.toExponential(2)}`)
})
