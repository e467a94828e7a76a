// Ensembles of patterns, soft labels, distillation into the classifier, continued MLM pretraining.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { lastJson, pet, sentimentLines } from './helpers/cli'
import { isAccuracyOver } from './helpers/accuracy'
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
  // --test is the dev file again: the best student checkpoint, reloaded, and the same ensemble score the same
  // 80 examples, so each test accuracy must be its dev accuracy exactly.
  t.ok(isAccuracyOver(s.dev_accuracy, 80), `the student's dev accuracy is k/80 (${s.dev_accuracy})`)
  t.equal(s.test_accuracy, s.dev_accuracy, 'the reloaded best student scores the same on the same 80 examples')
  t.ok(isAccuracyOver(s.ensemble_dev_accuracy, 80), `the ensemble's dev accuracy is k/80 (${s.ensemble_dev_accuracy})`)
  t.equal(s.ensemble_test_accuracy, s.ensemble_dev_accuracy, 'the ensemble scores the same on the same 80 examples')
  const ens = JSON.parse(fs.readFileSync(path.join(out, 'ensemble/ensemble.json'), 'utf8'))
  t.equal(ens.patterns.length, 2)
  t.ok(ens.patterns.every((p: any) => p.weight > 0 && isAccuracyOver(p.weight, 24)), 'wmean weights are training-set accuracies (k/24, k > 0)')
  t.ok(ens.patterns.every((p: any) => isAccuracyOver(p.dev_accuracy, 80)), 'each pattern model\'s dev accuracy is k/80')
  t.same(ens.patterns.map((p: any) => p.test_accuracy), ens.patterns.map((p: any) => p.dev_accuracy), 'and its test accuracy on the same file is the same')
  t.equal(ens.dev_accuracy, s.ensemble_dev_accuracy, 'ensemble.json has the dev accuracy distill reported')
  const soft = fs.readFileSync(ens.soft_labels, 'utf8').trim().split('\n').map(l => JSON.parse(l))
  t.equal(soft.length, 64)
  t.same(soft.map(x => x.text), fs.readFileSync(unlabeled, 'utf8').trim().split('\n').map(l => JSON.parse(l).text),
    'one soft label per unlabeled example, in order')
  t.ok(soft.every(x => Array.isArray(x.logits) && x.logits.length === 2 && x.logits.every(Number.isFinite)), 'each has 2 finite logits')

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

t.test('an interrupted ensemble resumes: finished members stand, the interrupted one continues', async t => {
  const { ensemble } = await import('../lib/index')
  const out = path.join(dir, 'ens-resume')
  const opts = {
    patterns: ['[MASK]满意。{text}', '[MASK]好。{text}'], verbalizer: { positive: ['很'], negative: ['不'] }, train, dev,
    unlabeled, epochs: 2, batchSize: 8, seed: 3, weighting: 'uniform' as const, out
  }
  const ac = new AbortController()
  let member = 0
  const err = await ensemble({
    ...opts,
    signal: ac.signal,
    onProgress: e => {
      if (e.kind === 'stage' && /^pattern \d/.test(e.message)) member++
      if (e.kind === 'epoch' && member === 2 && e.epoch === 1) ac.abort()
    }
  }).catch(e => e)
  t.equal(err.code, 'EABORT', err.message)
  const firstBest = path.join(out, 'pattern-1', 'best', 'model.safetensors')
  const before = fs.statSync(firstBest).mtimeMs
  t.ok(fs.existsSync(path.join(out, 'pattern-1', 'done.json')), 'member 1 finished: its result is kept')
  t.ok(fs.existsSync(path.join(out, 'pattern-2', 'last', 'state.json')), 'member 2 stopped after its first epoch')
  const trained: number[] = []
  let current = 0
  const r = await ensemble({
    ...opts,
    resume: true,
    onProgress: e => {
      if (e.kind === 'stage' && /^pattern \d/.test(e.message)) current++
      if (e.kind === 'train') trained.push(current)
    }
  })
  t.notOk(trained.includes(1), 'member 1 is not trained again')
  t.equal(trained.filter(m => m === 2).length, 3, 'member 2 trains only its second epoch (24 examples: 3 steps)')
  t.equal(fs.statSync(firstBest).mtimeMs, before, "member 1's checkpoint is untouched")
  t.ok(r.patterns.every(p => isAccuracyOver(p.devAccuracy, 80)), 'both members have dev accuracies (k/80)')
  t.equal(fs.readFileSync(r.softLabels!, 'utf8').trim().split('\n').length, 64, 'soft labels for every unlabeled example')
})
