#!/usr/bin/env node
// TNEWS with label names of different lengths (issue: label words of any length), through the library in-process:
// zero-shot with the one-pass sum and the per-token mean (length normalisation), then few-shot PET over seeds,
// beside the two-character names. Results go to OUT/label-lengths.json and a Markdown table on stdout.
//   node scripts/label-lengths.js [--out runs/label-lengths] [--seeds 1,2,3] [--epochs 30] [--only zero-shot|pet]
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { zeroShot, train } = require('../dist/lib')

const arg = (name, fallback) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : fallback }
const out = path.resolve(arg('out', 'runs/label-lengths'))
const seeds = arg('seeds', '1,2,3').split(',').map(Number)
const epochs = Number(arg('epochs', '30'))
const only = arg('only', 'all')
const dir = path.resolve(__dirname, '../../shared/datasets/fewclue/tnews')
const table = fs.readFileSync(path.join(dir, 'label_index2en2zh.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l))
// Longer, natural names of 2-4 characters (three lengths: three clozes per example)
const long = {
  news_story: '民间故事', news_culture: '文化艺术', news_entertainment: '娱乐明星', news_sports: '体育', news_finance: '财经',
  news_house: '房地产', news_car: '汽车', news_edu: '教育', news_tech: '科学技术', news_military: '军事', news_travel: '旅游',
  news_world: '国际', news_stock: '股票', news_agriculture: '农业农村', news_game: '电子竞技'
}
const names = {
  short: Object.fromEntries(table.map(r => [r.label_desc, r.label_zh])),
  long
}
const common = (kind) => ({
  textField: 'sentence', labelField: 'label_desc', labelMap: names[kind],
  verbalizer: Object.fromEntries(Object.values(names[kind]).map(n => [n, [n]])), pattern: '[MASK]新闻：{text}'
})
fs.mkdirSync(out, { recursive: true })
const resultsFile = path.join(out, 'label-lengths.json')
const results = fs.existsSync(resultsFile) ? JSON.parse(fs.readFileSync(resultsFile, 'utf8')) : {}
const save = () => fs.writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n')

async function main () {
  if (only === 'all' || only === 'zero-shot') {
    for (const kind of ['short', 'long']) {
      for (const multiToken of ['sum', 'mean']) {
        const key = `zero-shot ${kind} ${multiToken}`
        if (results[key]) continue
        const dev = await zeroShot({ ...common(kind), data: path.join(dir, 'dev_0.jsonl'), multiToken })
        const test = await zeroShot({ ...common(kind), data: path.join(dir, 'test_public.jsonl'), multiToken })
        results[key] = { dev: dev.accuracy, test: test.accuracy, sentencesPerS: test.sentencesPerS }
        save()
        console.error(key, results[key])
      }
    }
  }
  if (only === 'all' || only === 'pet') {
    for (const kind of ['long']) {
      for (const seed of seeds) {
        const key = `pet ${kind} seed ${seed}`
        if (results[key]) continue
        const t0 = Date.now()
        const r = await train({
          ...common(kind), train: path.join(dir, 'train_0.jsonl'), dev: path.join(dir, 'dev_0.jsonl'), test: path.join(dir, 'test_public.jsonl'),
          epochs, seed, out: path.join(out, `pet-${kind}-s${seed}`), resume: true
        })
        results[key] = { dev: r.devAccuracy, test: r.testAccuracy, bestEpoch: r.bestEpoch, seconds: (Date.now() - t0) / 1000 }
        save()
        console.error(key, results[key])
      }
    }
  }
  const pct = x => x == null ? '—' : (100 * x).toFixed(1)
  console.log('| setting | dev_0 % | test_public % |\n|---|---|---|')
  for (const [k, v] of Object.entries(results)) console.log(`| ${k} | ${pct(v.dev)} | ${pct(v.test)} |`)
}
main().catch(err => { console.error(err); process.exit(1) })
