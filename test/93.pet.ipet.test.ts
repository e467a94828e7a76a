// iPET: teacher choice, pseudo-label selection (no endless loop for a label nobody predicts), and a tiny run.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { labelRatio, pickTeachers, selectPseudoLabeled } from '../lib/pet/ipet'
import { Rng } from '../lib/train/rng'
import { isAccuracyOver } from './helpers/accuracy'
import { repo, sentiment, tmpDir } from './helpers/paths'

t.test('teachers are a share of the other models, at least one, never the model itself', async t => {
  const rng = new Rng(1)
  for (let i = 0; i < 5; i++) {
    const ts = pickTeachers(i, 5, 0.25, rng)
    t.equal(ts.length, 1)
    t.notOk(ts.includes(i))
  }
  t.equal(pickTeachers(0, 9, 0.5, rng).length, 4)
  t.throws(() => pickTeachers(0, 1, 0.25, rng), /at least two patterns/)
})

t.test('pseudo-labels keep the label ratio, most confident first, and a label with no predictions ends', async t => {
  const scores = [[3, 0], [1, 0], [0, 2], [5, 0], [0, 0.5], [2, 0]]
  const picked = selectPseudoLabeled(scores, [0.5, 0.5], 4)
  t.same(picked.filter(p => p.label === 0).map(p => p.index), [3, 0])
  t.same(picked.filter(p => p.label === 1).map(p => p.index), [2, 4])
  const none = selectPseudoLabeled([[3, 0], [2, 0]], [0.5, 0.5], 4)
  t.same(none.map(p => p.label), [0, 0], 'label 1 has no predicted examples: it simply gets none')
  t.same(labelRatio([0, 0, 1, 0], 2), [0.75, 0.25])
})

t.test('a tiny iPET run: two patterns, two generations', async t => {
  const dir = tmpDir()
  const lines = (file: string, from: number, to: number) => fs.readFileSync(path.join(sentiment, file), 'utf8').split('\n').slice(from, to).join('\n') + '\n'
  fs.writeFileSync(path.join(dir, 'train.jsonl'), lines('train.jsonl', 0, 12))
  fs.writeFileSync(path.join(dir, 'dev.jsonl'), lines('valid.jsonl', 0, 40))
  fs.writeFileSync(path.join(dir, 'unl.jsonl'), lines('train.jsonl', 2000, 2080))
  const r = spawnSync(process.execPath, [path.join(repo, 'bin/pet.js'), 'ipet', '--train', path.join(dir, 'train.jsonl'), '--dev', path.join(dir, 'dev.jsonl'),
    '--unlabeled', path.join(dir, 'unl.jsonl'), '--pattern', '[MASK]满意。{text}', '--pattern', '[MASK]好。{text}',
    '--verbalizer', '{"positive":["很"],"negative":["不"]}', '--generations', '2', '--epochs', '1', '--out', path.join(dir, 'ipet'), '--json'], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  const s = JSON.parse(r.stdout.trim().split('\n').pop()!)
  t.equal(s.generations.length, 2)
  t.same(s.generations[0].models.map((m: any) => m.examples), [12, 12])
  t.ok(s.generations[1].models.every((m: any) => m.examples > 12 && m.examples <= 60), 'generation 1 trains on more, up to 12 x 5')
  t.ok(isAccuracyOver(s.dev_accuracy, 40), `the final ensemble's dev accuracy is k/40 (${s.dev_accuracy})`)
  t.ok(s.generations.every((g: any) => g.models.every((m: any) => isAccuracyOver(m.dev_accuracy, 40))), 'every model\'s dev accuracy is k/40')
  t.ok(s.generations.every((g: any) => g.models.every((m: any) => isAccuracyOver(m.weight, 12))), 'every model\'s weight is its accuracy on the 12 labeled examples, k/12')
  const soft = fs.readFileSync(s.soft_labels, 'utf8').trim().split('\n').map(l => JSON.parse(l))
  t.same(soft.map(x => x.text), fs.readFileSync(path.join(dir, 'unl.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l).text),
    'soft labels: one per unlabeled example, in order')
  t.ok(soft.every(x => Array.isArray(x.logits) && x.logits.length === 2 && x.logits.every(Number.isFinite)), 'each with 2 finite logits')
})
