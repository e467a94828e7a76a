#!/usr/bin/env node
// The seed's table on the bundled model: zero-shot P1-P5, "zero-shot 2" (continued MLM pretraining on the
// unlabeled training text, then zero-shot), few-shot PET P1-P5, semi-supervised P1-P5 (one run, the seed's way, and
// two stages: zero-shot 2's pretrained checkpoint, then few-shot PET), the plain fine-tune
// baseline, ensemble + distillation, P-tuning (frozen, full) — on ../shared/datasets/sentiment with 1% labels
// (the first 168 training lines), valid for model selection, test reported. Few-shot rows: mean ± std over seeds.
// --task eprstmt / tnews: the same rows on FewCLUE (train_0 labeled, dev_0 for selection, test_public reported,
// the unlabeled test.jsonl as the unlabeled text); TNEWS reads label_desc, maps it through the dataset's
// label_index2en2zh table to the two-character Chinese name, and asks for it with two [MASK]s.
//
//   node scripts/reproduce.js [--task sentiment|eprstmt|tnews] [--data DIR] [--out DIR] [--seeds 1,2,3]
//          [--only zero-shot,pet,...] [--patterns P1,P3] [--distill-epochs N] [--quick] [--table-only]
//
// Every run is a `pet` command whose --json summary is kept in OUT/runs/<name>.json; a rerun skips the runs
// already done, so an interrupted reproduction continues where it stopped. --quick (a smoke test: 2 epochs,
// 200 unlabeled lines, one seed, a 300-line test/valid) checks the wiring in minutes, not the numbers.
// The ensemble/distillation row uses the first seed's PET model of every pattern, training the missing ones.
// --table-only runs nothing: it prints the table of the runs done so far (rows name how many seeds they hold).
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const arg = (name, d) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : d }
const quick = process.argv.includes('--quick')
const tableOnly = process.argv.includes('--table-only')
const root = path.resolve(__dirname, '..')
const shared = path.join(root, '../shared/datasets')
const sentimentPatterns = { P1: '[MASK]满意。{text}', P2: '{text}[MASK]满意。', P3: '[MASK]好。{text}', P4: '[MASK]理想。{text}', P5: '感觉如何？[MASK]满意。{text}' }
const tasks = {
  sentiment: {
    data: path.join(shared, 'sentiment'),
    labeled: ['train', 168],
    dev: 'valid',
    test: 'test',
    unlabeled: ['train', Infinity, 168], // the rest of the training file, labels unused
    verbalizer: () => ({ positive: ['很'], negative: ['不'] }),
    patterns: sentimentPatterns
  },
  eprstmt: {
    data: path.join(shared, 'fewclue/eprstmt'),
    labeled: ['train_0', Infinity],
    dev: 'dev_0',
    test: 'test_public',
    unlabeled: ['test', Infinity], // FewCLUE's unlabeled test set (753 reviews)
    verbalizer: () => ({ Positive: ['很'], Negative: ['不'] }),
    patterns: sentimentPatterns,
    textField: 'sentence'
  },
  tnews: {
    data: path.join(shared, 'fewclue/tnews'),
    labeled: ['train_0', Infinity],
    dev: 'dev_0',
    test: 'test_public',
    unlabeled: ['test', Infinity], // FewCLUE's unlabeled test set (1,500 titles)
    // label_desc (news_sports) -> the table's Chinese name (体育), which is also the two-token verbalizer word
    labelTable: dir => Object.fromEntries(fs.readFileSync(path.join(dir, 'label_index2en2zh.jsonl'), 'utf8').split('\n').filter(Boolean)
      .map(l => JSON.parse(l)).map(r => [r.label_desc, r.label_zh])),
    verbalizer (dir) { return Object.fromEntries(Object.values(this.labelTable(dir)).map(zh => [zh, [zh]])) },
    patterns: { T1: '[MASK][MASK]新闻：{text}', T2: '这是一则[MASK][MASK]新闻。{text}', T3: '{text}（[MASK][MASK]）', T4: '下面是[MASK][MASK]频道的新闻：{text}' },
    textField: 'sentence',
    labelFlags (dir) { return ['--label-field', 'label_desc', '--label-map', JSON.stringify(this.labelTable(dir))] }
  }
}
// --model DIR: another model for every run (a GPT-2 folder: the LM patterns G1/G2, both scoring forms, and the
// rows that apply to a causal LM; runs in runs/reproduce-<model folder name>)
const modelArg = arg('model')
const causal = modelArg !== undefined && JSON.parse(fs.readFileSync(path.join(modelArg, 'config.json'), 'utf8')).model_type === 'gpt2'
const modelFlag = modelArg !== undefined ? ['--model', path.resolve(modelArg)] : []
const taskName = arg('task', 'sentiment')
const task = tasks[taskName]
// the seed's two LM patterns (the answer after the text, as a causal LM reads it); HF's counts: fixtures/hf-reference
if (causal && task) task.patterns = { G1: '感觉如何？{text}[MASK]满意。', G2: '{text}总之，[MASK]好。' }
if (!task) throw new Error(`--task: unknown task ${taskName} (${Object.keys(tasks).join(', ')})`)
const data = path.resolve(arg('data', task.data))
const defaultOut = (taskName === 'sentiment' ? 'runs/reproduce' : `runs/reproduce-${taskName}`) + (modelArg !== undefined ? `-${path.basename(path.resolve(modelArg))}` : '')
const out = path.resolve(arg('out', path.join(root, quick ? `${defaultOut}-quick` : defaultOut)))
const seeds = arg('seeds', quick ? '1' : '1,2,3').split(',').map(Number)
const only = arg('only', causal ? 'zero-shot,pet,finetune,ptune' : 'zero-shot,zero-shot-2,pet,semi,pretrain-pet,finetune,distill,ptune').split(',')
const epochs = quick ? '2' : '30'
const V = JSON.stringify(task.verbalizer(data))
const textFlag = task.textField ? ['--text-field', task.textField] : [] // pretrain reads text only
const taskFlags = [...textFlag, ...(task.labelFlags ? task.labelFlags(data) : [])]
const allPatterns = task.patterns
// --patterns limits the per-pattern rows (zero-shot, few-shot, semi-supervised); the ensemble uses all of them
const P = Object.fromEntries(arg('patterns', Object.keys(allPatterns).join(',')).split(',').map(k => {
  if (!allPatterns[k]) throw new Error(`--patterns: unknown pattern ${k} (${Object.keys(allPatterns).join(', ')})`)
  return [k, allPatterns[k]]
}))

fs.mkdirSync(path.join(out, 'runs'), { recursive: true })
const split = (file, n, from = 0) => {
  const target = path.join(out, `${file}-${from}-${n}.jsonl`)
  if (!fs.existsSync(target)) {
    const lines = fs.readFileSync(path.join(data, `${file}.jsonl`), 'utf8').split('\n').filter(Boolean)
    fs.writeFileSync(target, lines.slice(from, n === Infinity ? undefined : from + n).join('\n') + '\n')
  }
  return target
}
const labeled = split(task.labeled[0], task.labeled[1])
const unlabeled = split(task.unlabeled[0], quick ? 200 : task.unlabeled[1], task.unlabeled[2])
const labeledCount = fs.readFileSync(labeled, 'utf8').split('\n').filter(Boolean).length
const valid = quick ? split(task.dev, 300) : path.join(data, `${task.dev}.jsonl`)
const test = quick ? split(task.test, 300) : path.join(data, `${task.test}.jsonl`)

function pet (name, args) {
  const file = path.join(out, 'runs', `${name}.json`)
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'))
  if (tableOnly) return null
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${name}: pet ${args.join(' ')}`)
  const t0 = Date.now()
  // --model from the command line, unless the run names its own (a pretrained checkpoint)
  const withModel = args.includes('--model') ? args : [...args, ...modelFlag]
  const r = spawnSync(process.execPath, [path.join(root, 'bin/pet.js'), ...withModel, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  if (r.status !== 0) throw new Error(`${name} failed (exit ${r.status})`)
  const summary = { ...JSON.parse(r.stdout.trim().split('\n').pop()), wall_seconds: (Date.now() - t0) / 1000 }
  fs.writeFileSync(file, JSON.stringify(summary, null, 2) + '\n')
  return summary
}
const runDir = name => path.join(out, 'models', name)
const stats = xs => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0
  return { mean: m, std: sd, n: xs.length }
}
// The HF implementation's accuracies with the same model (shared/models/zh-mini-mlm/reference_results.json), as a column
const refFile = arg('reference', path.join(root, '../shared/models/zh-mini-mlm/reference_results.json'))
const ref = !modelArg && fs.existsSync(refFile) ? JSON.parse(fs.readFileSync(refFile, 'utf8')) : {}
const refCell = (v, t) => v === undefined && t === undefined ? '' : `${v === undefined ? '—' : (100 * v).toFixed(1)} / ${t === undefined ? '—' : (100 * t).toFixed(1)}`
const refs = {
  sentiment: {
    ...Object.fromEntries(Object.entries(ref.zero_shot_sentiment ?? {}).map(([k, r]) => [`zero-shot-${k}`, refCell(r.valid, r.test)])),
    'pet-P1': ref.few_shot_pet_p1 ? refCell(ref.few_shot_pet_p1.best_valid, ref.few_shot_pet_p1.test_at_best_valid) : '',
    finetune: ref.fine_tune_cls ? refCell(ref.fine_tune_cls.best_valid, ref.fine_tune_cls.test_at_best_valid) : ''
  },
  eprstmt: Object.fromEntries(Object.entries(ref.zero_shot_eprstmt_test_public ?? {}).map(([k, t]) => [`zero-shot-${k}`, refCell(undefined, t)]))
}[taskName] ?? {}
const rows = []
const row = (setting, validAcc, testAcc, note = '', key = '') => rows.push({ setting, valid: validAcc, test: testAcc, reference: refs[key] ?? '', note })

if (only.includes('zero-shot')) {
  for (const [k, p] of Object.entries(P)) {
    const v = pet(`zero-shot-${k}-valid`, ['zero-shot', '--data', valid, '--pattern', p, '--verbalizer', V, ...taskFlags])
    const t = pet(`zero-shot-${k}-test`, ['zero-shot', '--data', test, '--pattern', p, '--verbalizer', V, ...taskFlags])
    if (v && t) row(`zero-shot ${k} \`${p}\`${causal ? ' (the word)' : ''}`, v.accuracy, t.accuracy, '', `zero-shot-${k}`)
    if (!causal) continue
    // the seed's other LM scoring form: the word and the rest of the pattern after it
    const ws = ['--continuation', 'word+suffix']
    const v2 = pet(`zero-shot-${k}-suffix-valid`, ['zero-shot', '--data', valid, '--pattern', p, '--verbalizer', V, ...ws, ...taskFlags])
    const t2 = pet(`zero-shot-${k}-suffix-test`, ['zero-shot', '--data', test, '--pattern', p, '--verbalizer', V, ...ws, ...taskFlags])
    if (v2 && t2) row(`zero-shot ${k} \`${p}\` (the word + the rest of the pattern)`, v2.accuracy, t2.accuracy)
  }
}
// Continued MLM pretraining on the unlabeled text (shared by zero-shot 2 and the two-stage semi-supervised rows)
const pretrained = () => pet('pretrain', ['pretrain', '--data', unlabeled, ...textFlag, '--epochs', quick ? '1' : '3', '--out', runDir('pretrain')])
if (only.includes('zero-shot-2')) {
  const pre = pretrained()
  for (const [k, p] of pre ? Object.entries(P) : []) {
    const v = pet(`zero-shot-2-${k}-valid`, ['zero-shot', '--model', pre.model, '--data', valid, '--pattern', p, '--verbalizer', V, ...taskFlags])
    const t = pet(`zero-shot-2-${k}-test`, ['zero-shot', '--model', pre.model, '--data', test, '--pattern', p, '--verbalizer', V, ...taskFlags])
    if (v && t) row(`zero-shot 2 ${k} (after MLM pretraining on ${pre.texts} unlabeled texts)`, v.accuracy, t.accuracy)
  }
}
const seededRun = (name, args, s) => pet(`${name}-seed${s}`, [...args, '--seed', String(s), '--out', runDir(`${name}-seed${s}`)])
const seeded = (label, name, args) => {
  const all = seeds.map(s => seededRun(name, args, s))
  // the seeds whose run finished, named from the unfiltered list (a failed seed shifts nothing)
  const done = seeds.filter((_, i) => all[i])
  const runs = all.filter(Boolean)
  if (runs.length === 0) return runs
  const v = stats(runs.map(r => r.dev_accuracy))
  const t = stats(runs.map(r => r.test_accuracy))
  row(label, v, t, `seeds ${done.join(', ')}; ${Math.round(stats(runs.map(r => r.seconds)).mean)} s per run (mean)`, name)
  return runs
}
const common = ['--train', labeled, '--dev', valid, '--test', test, '--epochs', epochs, ...taskFlags]
// a causal LM's few-shot PET: cross-entropy over the label words at the answer position (P-tuning keeps the LM loss)
const petArgs = p => ['train', ...common, '--pattern', p, '--verbalizer', V, ...(causal ? ['--label-loss', 'verbalizer'] : [])]
if (only.includes('pet')) {
  for (const [k, p] of Object.entries(P)) seeded(`few-shot PET ${k} (${labeledCount} labels)`, `pet-${k}`, petArgs(p))
}
if (only.includes('semi')) {
  for (const [k, p] of Object.entries(P)) seeded(`semi-supervised PET ${k} (${labeledCount} labels + unlabeled)`, `semi-${k}`, ['train', ...common, '--pattern', p, '--verbalizer', V, '--unlabeled', unlabeled])
}
if (only.includes('pretrain-pet')) {
  // The other way to use the unlabeled text: continued MLM pretraining on it first (zero-shot 2's checkpoint,
  // trained here if missing), then few-shot PET from that checkpoint.
  const pre = pretrained()
  for (const [k, p] of pre ? Object.entries(P) : []) {
    seeded(`semi-supervised in two stages: MLM pretraining on the unlabeled texts, then few-shot PET ${k}`, `pre-pet-${k}`,
      [...petArgs(p), '--model', pre.model])
  }
}
if (only.includes('finetune')) seeded(`plain fine-tune, ${causal ? 'classifier on the last token' : '[CLS] classifier'} (${labeledCount} labels)`, 'finetune', ['finetune', ...common])
if (only.includes('distill')) {
  const distillEpochs = arg('distill-epochs', quick ? '1' : '2')
  // The ensemble is the first seed's PET model of every pattern (trained here if that run is not done yet).
  const models = Object.entries(allPatterns).map(([k, p]) => seededRun(`pet-${k}`, petArgs(p), seeds[0])?.model)
  const ensembleArgs = ['distill', ...common, ...Object.values(allPatterns).flatMap(p => ['--pattern', p]), '--verbalizer', V, '--unlabeled', unlabeled,
    '--models', models.join(','), '--distill-epochs', distillEpochs]
  // the default student run is "distill"; another --distill-epochs is a run of its own
  const name = arg('distill-epochs') ? `distill-e${distillEpochs}` : 'distill'
  const d = pet(name, [...ensembleArgs, '--out', runDir(name)])
  if (d) {
    row(`ensemble of ${Object.keys(allPatterns).join(', ')} (wmean)`, d.ensemble_dev_accuracy, d.ensemble_test_accuracy)
    row('ensemble + distillation into the classifier', d.dev_accuracy, d.test_accuracy, `T = 2, ${d.soft_labeled} soft-labeled texts, ${d.epochs} epochs`)
  }
}
if (only.includes('ptune')) {
  seeded('P-tuning, frozen model (8 prompt tokens)', 'ptune-frozen', ['ptune', ...common, '--verbalizer', V, '--mode', 'frozen'])
  seeded('P-tuning, full (8 prompt tokens)', 'ptune-full', ['ptune', ...common, '--verbalizer', V, '--mode', 'full'])
}

const fmt = x => x === null || x === undefined ? '—' : typeof x === 'number' ? (100 * x).toFixed(1) : x.n > 1 ? `${(100 * x.mean).toFixed(1)} ± ${(100 * x.std).toFixed(1)}` : (100 * x.mean).toFixed(1)
const md = [`| setting | ${task.dev} % | ${task.test} % | HF reference ${task.dev} / ${task.test} % | note |`, '|---|---|---|---|---|',
  ...rows.map(r => `| ${r.setting} | ${fmt(r.valid)} | ${fmt(r.test)} | ${r.reference} | ${r.note} |`)].join('\n')
fs.writeFileSync(path.join(out, 'table.md'), md + '\n')
fs.writeFileSync(path.join(out, 'table.json'), JSON.stringify(rows, null, 2) + '\n')
console.log(md)
