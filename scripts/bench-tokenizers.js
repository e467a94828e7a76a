#!/usr/bin/env node
// Tokenization throughput (texts/s, tokens) of our WordPiece beside @huggingface/tokenizers on the sentiment set
// (train + valid + test, field text), same run. A first pass on a fresh tokenizer and a second (caches warm).
//   node scripts/bench-tokenizers.js [--data ../shared/datasets/sentiment] [--families DIR]
'use strict'
const path = require('node:path')
const { benchTokenizers, readTexts } = require('../dist/lib/bench/tokenizers')

const arg = (name, fallback) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : fallback }
const root = path.resolve(__dirname, '..')
const data = arg('data', path.join(root, '../shared/datasets/sentiment'))
const families = arg('families', path.join(root, '../shared/fixtures/hf-reference/families'))
const texts = readTexts(['train', 'valid', 'test'].map(s => path.join(data, `${s}.jsonl`)))
console.log(`${texts.length} texts, node ${process.version}`)
console.log('| tokenizer | first pass texts/s | second pass texts/s | tokens |')
console.log('|---|---:|---:|---:|')
for (const r of benchTokenizers(texts, families)) {
  console.log(`| ${r.name} | ${Math.round(r.coldTextsPerSec).toLocaleString('en')} | ${Math.round(r.warmTextsPerSec).toLocaleString('en')} | ${r.tokens.toLocaleString('en')} |`)
}
