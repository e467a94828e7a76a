#!/usr/bin/env node
// Scoring throughput with 2, 15 and 120 labels whose words have different token counts (one run, same model and
// sentences). A masked LM: the cost grows with the number of distinct word lengths (one encoder pass each per
// batch), not with the number of labels. A causal LM (--model a GPT-2 folder): one pass per example over its prefix
// plus every word (and suffix) as a branch, so the tokens per example grow by the words' tokens only, against
// k x (prefix + word) for k separate passes. Prints a Markdown table; --json prints it as JSON.
//   node scripts/label-bench.js [--model DIR] [--continuation word|word+suffix] [--limit 512] [--batch-size 32] [--runs 3]
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { MaskedLM, Pattern, Verbalizer, scoreExamples, toExamples } = require('../dist/lib/advanced')
// the same label sets as `pet bench`'s causal-LM sweep
const { syntheticLabels, tnewsLabels } = require('../dist/lib/bench/gpt')

const arg = (name, fallback) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : fallback }
const limit = Number(arg('limit', '512'))
const batchSize = Number(arg('batch-size', '32'))
const runs = Number(arg('runs', '3'))
const modelDir = arg('model', undefined)
const continuation = arg('continuation', 'word')
const data = path.resolve(__dirname, '../data/sentiment/test.jsonl')

async function main () {
  const model = await MaskedLM.load(modelDir)
  const causal = model.isCausal
  const texts = fs.readFileSync(data, 'utf8').trim().split('\n').slice(0, limit).map(l => JSON.parse(l).text)
  const examples = toExamples(texts)
  // A causal LM reads the answer after the text: the same prompts with the text first.
  const cases = [
    { name: '2 labels (sentiment, 1 token)', pattern: causal ? '{text}总之，[MASK]好。' : '[MASK]满意。{text}', spec: { positive: ['很'], negative: ['不'] } },
    { name: '15 labels (TNEWS long names, 2-4 tokens)', pattern: causal ? '{text}这是一则[MASK]新闻。' : '[MASK]新闻：{text}', spec: tnewsLabels },
    { name: '120 labels (1-5 tokens)', pattern: causal ? '{text}这是[MASK]。' : '这是[MASK]。{text}', spec: syntheticLabels(model.tokenizer, 120) }
  ]
  const opts = { batchSize, labelScores: { manyToOne: 'mean', multiToken: 'auto', score: 'logit', continuation } }
  const rows = []
  for (const c of cases) {
    const v = new Verbalizer(c.spec, model.tokenizer)
    const pattern = new Pattern(c.pattern)
    await scoreExamples(model, pattern, v, examples.slice(0, batchSize), opts) // warm-up
    const times = []
    for (let r = 0; r < runs; r++) {
      const t0 = process.hrtime.bigint()
      await scoreExamples(model, pattern, v, examples, opts)
      times.push(Number(process.hrtime.bigint() - t0) / 1e9)
    }
    times.sort((a, b) => a - b)
    const median = times[Math.floor(times.length / 2)]
    const row = { case: c.name, labels: v.labels.length, words_lengths: v.lengths, passes_per_example: v.lengths.length, candidates: v.candidates.length, sentences_per_s: texts.length / median }
    if (causal) {
      // tokens per example in the one branched pass, and in k separate passes (prefix + word [+ suffix] each)
      const words = v.words.flat().map(w => w.ids.length)
      let branched = 0
      let separate = 0
      for (const e of examples) {
        const { prefix, suffix } = pattern.encodeCausal(e.fields, model.tokenizer, 128, Math.max(...v.lengths))
        const tail = continuation === 'word+suffix' ? suffix.length : 0
        branched += prefix.length + words.reduce((a, n) => a + n + tail, 0)
        separate += words.reduce((a, n) => a + prefix.length + n + tail, 0)
      }
      Object.assign(row, { tokens_per_example: branched / examples.length, separate_pass_tokens: separate / examples.length })
    }
    rows.push(row)
  }
  model.dispose()
  if (process.argv.includes('--json')) { console.log(JSON.stringify(rows)); return }
  if (causal) {
    console.log(`${modelDir}: ${texts.length} sentences, batch ${batchSize}, continuation ${continuation}, median of ${runs} runs\n`)
    console.log('| labels | word lengths | tokens per example (one branched pass) | tokens in k separate passes | sentences/s | relative to 2 labels |\n|---|---|---:|---:|---:|---:|')
    for (const r of rows) console.log(`| ${r.case} | ${r.words_lengths.join(', ')} | ${r.tokens_per_example.toFixed(0)} | ${r.separate_pass_tokens.toFixed(0)} | ${r.sentences_per_s.toFixed(1)} | ${(r.sentences_per_s / rows[0].sentences_per_s).toFixed(2)} |`)
    return
  }
  console.log(`${texts.length} sentences, batch ${batchSize}, median of ${runs} runs\n`)
  console.log('| labels | word lengths | encoder passes per example | candidates | sentences/s | relative to 2 labels |\n|---|---|---:|---:|---:|---:|')
  for (const r of rows) console.log(`| ${r.case} | ${r.words_lengths.join(', ')} | ${r.passes_per_example} | ${r.candidates} | ${r.sentences_per_s.toFixed(1)} | ${(r.sentences_per_s / rows[0].sentences_per_s).toFixed(2)} |`)
}
main().catch(err => { console.error(err); process.exit(1) })
