// The `pet` command line: tokenize and zero-shot, JSON summaries, and exit codes on bad input.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { WordPieceTokenizer } from '../lib/tokenizer/wordpiece'
import { miniMlm, repo, sentiment, tmpDir } from './helpers/paths'

const bin = path.join(repo, 'bin/pet.js')
const pet = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: repo })

t.test('pet tokenize prints input_ids and tokens per text', async t => {
  const tok = WordPieceTokenizer.fromFile(path.join(miniMlm, 'vocab.txt'))
  const r = pet('tokenize', '--model', miniMlm, '--text', '这趟北京之旅我感觉很不错。')
  t.equal(r.status, 0, r.stderr)
  const o = JSON.parse(r.stdout.trim())
  t.same(o.input_ids, [tok.clsId, ...tok.encode('这趟北京之旅我感觉很不错。'), tok.sepId])
  t.equal(o.tokens[0], '[CLS]')
  const dir = tmpDir()
  const input = path.join(dir, 'in.jsonl')
  fs.writeFileSync(input, '"好"\n{"text":"不好"}\n')
  const r2 = pet('tokenize', '--input', input)
  t.equal(r2.status, 0, r2.stderr)
  t.same(r2.stdout.trim().split('\n').map(l => JSON.parse(l).tokens), [['[CLS]', '好', '[SEP]'], ['[CLS]', '不', '好', '[SEP]']], 'default model, strings and objects')
  fs.writeFileSync(input, '"好"\n\n')
  const bad = pet('tokenize', '--input', input)
  t.equal(bad.status, 1)
  t.match(bad.stderr, /in\.jsonl:2: empty line/)
})

t.test('pet zero-shot --json ends with a JSON summary; --out writes predictions', async t => {
  const dir = tmpDir()
  const data = path.join(dir, 'test50.jsonl')
  fs.writeFileSync(data, fs.readFileSync(path.join(sentiment, 'test.jsonl'), 'utf8').split('\n').slice(0, 50).join('\n') + '\n')
  const out = path.join(dir, 'preds.jsonl')
  const r = pet('zero-shot', '--data', data, '--pattern', '[MASK]满意。{text}', '--verbalizer', '{"positive":["很"],"negative":["不"]}', '--out', out, '--json')
  t.equal(r.status, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  const summary = JSON.parse(lines[lines.length - 1])
  t.equal(summary.n, 50)
  t.ok(summary.accuracy > 0.3 && summary.accuracy <= 1)
  const preds = fs.readFileSync(out, 'utf8').trim().split('\n').map(l => JSON.parse(l))
  t.equal(preds.length, 50)
  t.equal(preds.filter(p => p.label === p.gold).length, summary.correct)
  const human = pet('zero-shot', '--data', data, '--pattern', '[MASK]满意。{text}', '--verbalizer', '{"positive":["很"],"negative":["不"]}')
  t.match(human.stdout, /accuracy: 0\.\d{4} \(\d+\/50\)/)
})

t.test('pet exit codes and messages on bad input', async t => {
  const dir = tmpDir()
  const data = path.join(dir, 'd.jsonl')
  fs.writeFileSync(data, '{"text":"好","label":"positive"}\n{"text": nope}\n')
  const v = '{"positive":["很"],"negative":["不"]}'
  let r = pet('zero-shot', '--data', data, '--pattern', '[MASK]满意。{text}', '--verbalizer', v)
  t.equal(r.status, 1)
  t.match(r.stderr, /d\.jsonl:2: invalid JSON/)
  fs.writeFileSync(data, '{"text":"好","label":"positive"}\n')
  r = pet('zero-shot', '--data', data, '--pattern', '满意。{text}', '--verbalizer', v)
  t.equal(r.status, 1)
  t.match(r.stderr, /has no \[MASK\]/)
  r = pet('zero-shot', '--data', data, '--pattern', '[MASK]满意。{text}', '--verbalizer', '{"positive":["😀"],"negative":["不"]}')
  t.equal(r.status, 1)
  t.match(r.stderr, /unknown verbalizer token/)
  r = pet('zero-shot', '--pattern', '[MASK]{text}', '--verbalizer', v)
  t.equal(r.status, 2)
  t.match(r.stderr, /--data is required/)
  r = pet('zero-shot', '--data', data, '--pattern', '[MASK]{text}', '--verbalizer', v, '--bogus')
  t.equal(r.status, 2)
  r = pet('frobnicate')
  t.equal(r.status, 2)
  t.match(r.stderr, /unknown command/)
})
