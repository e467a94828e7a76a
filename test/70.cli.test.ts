// The `pet` command line: tokenize and zero-shot, JSON summaries, and exit codes on bad input.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { WordPieceTokenizer } from '../lib/tokenizer/wordpiece'
import { zeroShot } from '../lib/workflows/zero-shot'
import { miniMlm, repo, sentiment, shared, tmpDir } from './helpers/paths'

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
  // As Hugging Face's tokenizer: special tokens typed in the text are those tokens (the shared HF fixture).
  const hf = JSON.parse(fs.readFileSync(path.join(shared, 'fixtures/hf-reference/tokenizer_reference.json'), 'utf8'))
  for (const text of ['[MASK]满意。这趟北京之旅', '[unused1][unused2]', '这趟北京之旅我感觉很不错。']) {
    const r3 = pet('tokenize', '--text', text)
    t.equal(r3.status, 0, r3.stderr)
    t.same(JSON.parse(r3.stdout).input_ids, hf[text].input_ids, `${text}: HF's ids`)
    t.same(JSON.parse(r3.stdout).tokens, hf[text].tokens)
  }
  t.equal(JSON.parse(pet('tokenize', '--text', '[MASK]满意').stdout).input_ids[1], 103, '[MASK] typed in the text is the mask token, id 103')
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
  // zero-shot has no randomness: the command prints the library's own result on the same 50 sentences
  const lib = await zeroShot({ data, pattern: '[MASK]满意。{text}', verbalizer: { positive: ['很'], negative: ['不'] } })
  t.equal(summary.correct, lib.correct, `${lib.correct}/50 correct, as zeroShot() in this process`)
  t.equal(summary.accuracy, lib.accuracy)
  t.ok(summary.accuracy > 0.3, `above 0.3 (P1 on the whole test set: 0.5722): ${summary.accuracy}`)
  const preds = fs.readFileSync(out, 'utf8').trim().split('\n').map(l => JSON.parse(l))
  t.equal(preds.length, 50)
  t.same(preds.map(p => p.label), lib.predictions.map(p => p.label), "--out holds zeroShot()'s predictions, in input order")
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

t.test('pet zero-shot reads FewCLUE TNEWS: label_desc through --label-map, two-token words at two masks', async t => {
  const tnews = path.join(shared, 'datasets/fewclue/tnews')
  const table = fs.readFileSync(path.join(tnews, 'label_index2en2zh.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l))
  const map = JSON.stringify(Object.fromEntries(table.map(r => [r.label_desc, r.label_zh])))
  const v = JSON.stringify(Object.fromEntries(table.map(r => [r.label_zh, [r.label_zh]])))
  const dir = tmpDir()
  const data = path.join(dir, 'dev20.jsonl')
  const lines = fs.readFileSync(path.join(tnews, 'dev_0.jsonl'), 'utf8').trim().split('\n').slice(0, 20)
  fs.writeFileSync(data, lines.join('\n') + '\n')
  const out = path.join(dir, 'preds.jsonl')
  const args = ['zero-shot', '--data', data, '--text-field', 'sentence', '--label-field', 'label_desc', '--pattern', '[MASK][MASK]新闻：{text}', '--verbalizer', v]
  const r = pet(...args, '--label-map', map, '--out', out, '--json')
  t.equal(r.status, 0, r.stderr)
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!)
  t.equal(summary.n, 20, 'every line labeled through the map')
  const preds = fs.readFileSync(out, 'utf8').trim().split('\n').map(l => JSON.parse(l))
  t.same(preds.map(p => p.gold), lines.map(l => table.find(r => r.label_desc === JSON.parse(l).label_desc).label_zh), 'gold labels are the mapped Chinese names')
  // Each prediction: a probability for each of the 15 labels (finite, in [0, 1], summing to 1), the label the most probable.
  const labelsZh = table.map(r => r.label_zh)
  t.ok(preds.every(p => JSON.stringify(Object.keys(p.probs)) === JSON.stringify(labelsZh)), 'probabilities for the 15 labels, in label order')
  t.ok(preds.every(p => Object.values(p.probs as Record<string, number>).every(x => Number.isFinite(x) && x >= 0 && x <= 1) &&
    Math.abs(Object.values(p.probs as Record<string, number>).reduce((a, x) => a + x, 0) - 1) < 1e-5), 'each a distribution: in [0, 1], summing to 1')
  t.ok(preds.every(p => Object.values(p.probs as Record<string, number>).every(x => x <= p.probs[p.label])), 'the predicted label is the most probable one')
  const unmapped = pet(...args, '--label-map', '{"news_story":"故事"}')
  t.equal(unmapped.status, 1)
  t.match(unmapped.stderr, /dev20\.jsonl:1: label 'news_\w+' is not in the label map/)
  const bad = pet(...args, '--label-map', '{"news_story":')
  t.equal(bad.status, 2)
  t.match(bad.stderr, /--label-map is not valid JSON/)
  const notObject = pet(...args, '--label-map', '["故事"]')
  t.equal(notObject.status, 2)
  t.match(notObject.stderr, /Expected object of raw label -> label name.* for --label-map but received/)
})

t.test('docs/cli.md carries the current option reference (regenerate: pet help --markdown)', async t => {
  const marker = '<!-- options reference: generated below -->'
  const doc = fs.readFileSync(path.join(repo, 'docs/cli.md'), 'utf8')
  t.ok(doc.includes(marker), 'the marker line is in docs/cli.md')
  const r = pet('help', '--markdown')
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /### pet train\n\n```\npet train \[options\]/, 'a section per command')
  t.match(r.stdout, /--gpt-pattern P\n/, "the bench's flags, from the options table")
  // the line after the marker is a note; then the generated part, byte for byte
  const generated = doc.slice(doc.indexOf(marker) + marker.length).replace(/^\n[^\n]*\n\n/, '')
  t.equal(generated, r.stdout, 'docs/cli.md is current: run `node bin/pet.js help --markdown` and paste it below the marker')
})
