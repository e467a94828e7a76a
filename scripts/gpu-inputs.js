#!/usr/bin/env node
// Pre-tokenized benchmark inputs for machines without Node (the GPU check, scripts/gpu-check.sh): the test
// sentences encoded with our tokenizer and the pattern (the very ids `pet bench` feeds both sides), the
// verbalizer's candidates, gold labels, and PET training batches with their MLM-masked positions drawn here once,
// so that native/tests/core_bench.cc and scripts/gpu/hf_bench.py run identical work.
//   node scripts/gpu-inputs.js [--data FILE.jsonl] [--model DIR] [--pattern P] [--verbalizer JSON]
//        [--max-length 128] [--train-batch-size 32] [--train-steps 40] [--mask-prob 0.15] [--seed N]
//        [--limit N] [--out gpu/inputs/sentiment_p1.json]
// --seed defaults to the workflows' default seed (the options table's, as `pet bench` trains with).
// Uses dist/ (npm run build:ts), loads no native code.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { parseArgs } = require('node:util')

const root = path.resolve(__dirname, '..')
const { prepareInputs } = require(path.join(root, 'dist/lib/bench/inputs.js'))
const { rng } = require(path.join(root, 'dist/lib/bench/ours.js'))
const { optionTable } = require(path.join(root, 'dist/lib/options.js'))

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', default: fs.existsSync(path.resolve(root, '../shared/datasets/sentiment/test.jsonl')) ? path.resolve(root, '../shared/datasets/sentiment/test.jsonl') : path.join(root, 'data/sentiment/test.jsonl') },
    model: { type: 'string', default: path.join(root, 'models/zh-mini-mlm') },
    pattern: { type: 'string', default: '[MASK]满意。{text}' },
    verbalizer: { type: 'string', default: '{"positive":["很"],"negative":["不"]}' },
    'max-length': { type: 'string', default: '128' },
    'train-batch-size': { type: 'string', default: '32' },
    'train-steps': { type: 'string', default: '40' },
    'mask-prob': { type: 'string', default: '0.15' },
    seed: { type: 'string', default: String(optionTable.seed.default) },
    limit: { type: 'string' },
    out: { type: 'string', default: path.join(root, 'gpu/inputs/sentiment_p1.json') }
  }
})

const int = (name) => {
  const v = Number(a[name])
  if (!Number.isInteger(v) || v < 1) { console.error(`gpu-inputs: --${name} must be an integer >= 1`); process.exit(2) }
  return v
}
const maxLength = int('max-length')
const batchSize = int('train-batch-size')
const trainSteps = int('train-steps')
const seed = int('seed')
const maskProb = Number(a['mask-prob'])

const inputs = prepareInputs({
  data: path.resolve(a.data),
  limit: a.limit === undefined ? undefined : int('limit'),
  pattern: a.pattern,
  verbalizer: a.verbalizer,
  model: path.resolve(a.model),
  maxLength,
  order: 'sorted'
})
const { encoded, verbalizer, pattern, gold, tokenizer } = inputs
const S = pattern.maskCount
const C = verbalizer.candidates.length

// words[label][word][slot] = index into candidates
const words = verbalizer.words.map(ws => ws.map(w => w.ids.map(id => verbalizer.candidateIndex.get(id))))

const examples = encoded.map((e, i) => {
  const x = { ids: e.inputIds, mask: e.maskPositions, gold: gold[i] }
  if (e.tokenTypeIds.some(t => t !== 0)) x.types = e.tokenTypeIds
  return x
})

// PET training batches as lib/bench/ours.ts builds them: labeled examples in dataset order, batch after batch;
// a seeded share of the other (non-special, non-[MASK]) tokens becomes MLM targets (replaced by [MASK]).
const random = rng(seed)
const special = new Set([tokenizer.clsId, tokenizer.sepId, tokenizer.padId, tokenizer.maskId])
const labeled = gold.map((_, i) => i).filter(i => gold[i] >= 0)
const steps = []
if (labeled.length > 0) {
  for (let s = 0; s < trainSteps; s++) {
    const rows = []
    for (let k = 0; k < batchSize; k++) rows.push(labeled[(s * batchSize + k) % labeled.length])
    const mlm = []
    rows.forEach((ex, b) => {
      const e = encoded[ex]
      const masks = new Set(e.maskPositions)
      e.inputIds.forEach((id, col) => {
        if (special.has(id) || masks.has(col) || random() >= maskProb) return
        mlm.push(b, col)
      })
    })
    steps.push({ rows, mlm })
  }
}

const out = {
  format: 'pet-mlm gpu inputs 1',
  data: path.relative(root, path.resolve(a.data)),
  pattern: a.pattern,
  verbalizer: JSON.parse(a.verbalizer),
  max_length: maxLength,
  vocab: path.relative(root, path.join(path.resolve(a.model), 'vocab.txt')),
  vocab_size: tokenizer.vocabSize ?? null,
  special: { pad: tokenizer.padId, cls: tokenizer.clsId, sep: tokenizer.sepId, mask: tokenizer.maskId },
  labels: verbalizer.labels,
  candidates: verbalizer.candidates,
  slots: S,
  words,
  examples,
  train: { batch_size: batchSize, mask_prob: maskProb, seed, lr: 1e-4, steps }
}
fs.mkdirSync(path.dirname(path.resolve(a.out)), { recursive: true })
fs.writeFileSync(a.out, JSON.stringify(out) + '\n')
const lengths = encoded.map(e => e.inputIds.length)
const mean = lengths.reduce((x, y) => x + y, 0) / Math.max(1, lengths.length)
console.log(`gpu-inputs: ${examples.length} examples (mean length ${mean.toFixed(1)}, max ${Math.max(...lengths)}), ` +
  `${labeled.length} labeled, ${C} candidates x ${S} slot(s), ${steps.length} training batches of ${batchSize} -> ${a.out} ` +
  `(${(fs.statSync(a.out).size / 1024).toFixed(0)} KB)`)
