// Ensembles of patterns, soft labels, distillation into the classifier, continued MLM pretraining.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { lastJson, pet, sentimentLines } from './helpers/cli'
import { tmpDir } from './helpers/paths'

const dir = tmpDir()
const lines = sentimentLines
const train = path.join(dir, 'train.jsonl')
const dev = path.join(dir, 'dev.jsonl')
const unlabeled = path.join(dir, 'unlabeled.jsonl')
fs.writeFileSync(train, lines('train.jsonl', 0, 24))
fs.writeFileSync(dev, lines('valid.jsonl', 0, 80))
fs.writeFileSync(unlabeled, lines('train.jsonl', 1000, 1064).split('\n').filter(Boolean).map(l => JSON.stringify({ text: JSON.parse(l).text })).join('\n') + '\n')
const V = ['--verbalizer', '{"positive":["很"],"negative":["不"]}']

t.test('ensemble of two patterns writes soft labels; distill trains the classifier on them', async t => {
  const out = path.join(dir, 'distill')
  const r = pet('distill', '--train', train, '--dev', dev, '--test', dev, '--pattern', '[MASK]满意。{text}', '--pattern', '[MASK]好。{text}', ...V,
    '--unlabeled', unlabeled, '--epochs', '2', '--distill-epochs', '1', '--out', out, '--json')
  t.equal(r.status, 0, r.stderr)
  const s = lastJson(r.stdout)
  t.equal(s.soft_labeled, 64)
  t.type(s.dev_accuracy, 'number')
  t.type(s.ensemble_dev_accuracy, 'number')
  const ens = JSON.parse(fs.readFileSync(path.join(out, 'ensemble/ensemble.json'), 'utf8'))
  t.equal(ens.patterns.length, 2)
  t.ok(ens.patterns.every((p: any) => p.weight > 0 && p.weight <= 1), 'wmean weights are training-set accuracies')
  const soft = fs.readFileSync(ens.soft_labels, 'utf8').trim().split('\n').map(l => JSON.parse(l))
  t.equal(soft.length, 64)
  t.ok(soft.every(x => typeof x.text === 'string' && x.logits.length === 2))

  // Reusing the trained pattern models and the soft labels.
  const again = pet('ensemble', '--train', train, '--dev', dev, '--pattern', '[MASK]满意。{text}', '--pattern', '[MASK]好。{text}', ...V,
    '--models', ens.patterns.map((p: any) => p.model).join(','), '--weighting', 'uniform', '--out', path.join(dir, 'ens2'), '--json')
  t.equal(again.status, 0, again.stderr)
  t.equal(lastJson(again.stdout).patterns[0].weight, 1)
  const d2 = pet('distill', '--soft-labels', ens.soft_labels, '--labels', '["positive","negative"]', '--train', train, '--dev', dev,
    '--distill-epochs', '1', '--out', path.join(dir, 'd2'), '--json')
  t.equal(d2.status, 0, d2.stderr)
  t.equal(lastJson(d2.stdout).soft_labeled, 64)
  const bad = pet('distill', '--soft-labels', ens.soft_labels, '--labels', '["a","b","c"]', '--train', train)
  t.equal(bad.status, 1)
  t.match(bad.stderr, /"logits" must be 3 numbers/)
})

t.test('pretrain continues MLM training and writes a usable model', async t => {
  const out = path.join(dir, 'pre')
  const r = pet('pretrain', '--data', unlabeled, '--epochs', '1', '--batch-size', '16', '--out', out, '--json')
  t.equal(r.status, 0, r.stderr)
  const s = lastJson(r.stdout)
  t.equal(s.steps, 4)
  t.ok(s.final_mlm_loss > 0 && s.final_mlm_loss < 10)
  const z = pet('zero-shot', '--model', s.model, '--data', dev, '--pattern', '[MASK]满意。{text}', ...V, '--json')
  t.equal(z.status, 0, z.stderr)
  t.equal(lastJson(z.stdout).n, 80)
})
