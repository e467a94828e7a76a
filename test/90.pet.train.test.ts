// Few-shot PET and the classifier baseline end to end through the CLI: learning, checkpoints, resume, bad input.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { killAfterEpoch, lastJson, pet, sentimentLines } from './helpers/cli'
import { isAccuracyOver } from './helpers/accuracy'
import { tmpDir } from './helpers/paths'

const dir = tmpDir()
const lines = sentimentLines
const train = path.join(dir, 'train.jsonl')
const dev = path.join(dir, 'dev.jsonl')
fs.writeFileSync(train, lines('train.jsonl', 0, 32))
fs.writeFileSync(dev, lines('valid.jsonl', 0, 200))
const P1 = ['--pattern', '[MASK]满意。{text}', '--verbalizer', '{"positive":["很"],"negative":["不"]}']

t.test('a short few-shot PET run beats zero-shot; predict reuses the checkpoint', async t => {
  const zs = pet('zero-shot', '--data', dev, ...P1, '--json')
  t.equal(zs.status, 0, zs.stderr)
  const out = path.join(dir, 'pet')
  const r = pet('train', '--train', train, '--dev', dev, '--test', dev, ...P1, '--epochs', '5', '--seed', '1', '--out', out, '--json')
  t.equal(r.status, 0, r.stderr)
  const s = lastJson(r.stdout)
  const zero = lastJson(zs.stdout).accuracy
  t.ok(s.dev_accuracy > zero + 0.05, `few-shot ${s.dev_accuracy.toFixed(3)} vs zero-shot ${zero.toFixed(3)}`)
  t.equal(s.test_accuracy, s.dev_accuracy, 'the best checkpoint scores the same when evaluated again')
  for (const f of ['best/model.safetensors', 'best/pet.json', 'report.json', 'report.md', 'history.json']) t.ok(fs.existsSync(path.join(out, f)), f)
  t.notOk(fs.existsSync(path.join(out, 'last')), 'a finished run leaves no resume state')
  const p = pet('predict', '--model', path.join(out, 'best'), '--data', dev, '--json')
  t.equal(p.status, 0, p.stderr)
  t.equal(lastJson(p.stdout).accuracy, s.dev_accuracy)

  const sup = pet('train', '--train', train, '--dev', dev, ...P1, '--epochs', '2', '--label-loss', 'verbalizer', '--alpha', '0.9',
    '--unlabeled', dev, '--out', path.join(dir, 'semi'), '--json')
  t.equal(sup.status, 0, sup.stderr)
  t.equal(lastJson(sup.stdout).unlabeled, 200, 'semi-supervised with the verbalizer loss runs')
})

t.test('finetune trains the [CLS] classifier and predict uses it', async t => {
  const out = path.join(dir, 'ft')
  const r = pet('finetune', '--train', train, '--dev', dev, '--epochs', '2', '--out', out, '--json')
  t.equal(r.status, 0, r.stderr)
  const s = lastJson(r.stdout)
  t.same(s.labels, ['negative', 'positive'])
  t.ok(isAccuracyOver(s.dev_accuracy, 200) && s.dev_accuracy > 0.3, `a dev accuracy k/200 above 0.3 (${s.dev_accuracy})`)
  const p = pet('predict', '--model', path.join(out, 'best'), '--data', dev, '--json')
  t.equal(p.status, 0, p.stderr)
  t.equal(lastJson(p.stdout).accuracy, s.dev_accuracy)
})

t.test('an interrupted run resumes to the same result as an uninterrupted one', async t => {
  const args = (out: string) => ['train', '--train', train, '--dev', dev, ...P1, '--epochs', '4', '--batch-size', '8', '--seed', '3', '--out', out, '--json']
  const whole = pet(...args(path.join(dir, 'whole')))
  t.equal(whole.status, 0, whole.stderr)
  const out = path.join(dir, 'cut')
  await killAfterEpoch(args(out), out, 1)
  const state = path.join(out, 'last', 'state.json')
  t.ok(fs.existsSync(state), 'the killed run left its state')
  const resumed = pet(...args(out), '--resume')
  t.equal(resumed.status, 0, resumed.stderr)
  const a = JSON.parse(fs.readFileSync(path.join(dir, 'whole/history.json'), 'utf8'))
  const b = JSON.parse(fs.readFileSync(path.join(out, 'history.json'), 'utf8'))
  t.same(b.map((h: any) => [h.loss, h.dev]), a.map((h: any) => [h.loss, h.dev]), 'same losses and dev accuracies epoch by epoch')
  t.equal(lastJson(resumed.stdout).dev_accuracy, lastJson(whole.stdout).dev_accuracy)
})

t.test('bad training input is reported and nothing is lost', async t => {
  const bad = path.join(dir, 'bad.jsonl')
  fs.writeFileSync(bad, '{"text":"好","label":"positive"}\n{"text":"一般","label":"neutral"}\n')
  let r = pet('train', '--train', bad, ...P1, '--epochs', '1', '--out', path.join(dir, 'x1'))
  t.equal(r.status, 1)
  t.match(r.stderr, /bad\.jsonl:2: unknown label 'neutral'/)
  fs.writeFileSync(bad, '')
  r = pet('train', '--train', bad, ...P1, '--out', path.join(dir, 'x2'))
  t.equal(r.status, 1)
  t.match(r.stderr, /no examples/)
  r = pet('train', '--train', train, '--pattern', '[MASK]满意。', '--verbalizer', '{"positive":["很"],"negative":["不"]}', '--out', path.join(dir, 'x3'))
  t.equal(r.status, 1)
  t.match(r.stderr, /has no input field such as \{text\}/)
  r = pet('finetune', '--train', bad)
  t.equal(r.status, 1)
  r = pet('train', '--train', train, ...P1, '--mask-rate', '1.5')
  t.equal(r.status, 2, 'a flag value out of range is a usage error')
  t.match(r.stderr, /Expected number in \[0, 0\.999\] for --mask-rate but received 1\.5/)
})
