// `pet bench` runs end to end on a tiny input and reports the fields other tools read. Nothing is timed here.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { batchesFor, encoderFlops } from '../lib/bench/inputs'
import { cpuIsa } from '../lib/bench/machine'
import { cliWorkflow, parseFlags } from '../lib/cli/command'
import { PetError } from '../lib/errors'
import { workflows } from '../lib/options'
import { percentile, spread } from '../lib/bench/stats'
import { repo, shared, tmpDir } from './helpers/paths'

const bin = path.join(repo, 'bin/pet.js')
const bench = (...args: string[]) => spawnSync(process.execPath, [bin, 'bench', ...args], { encoding: 'utf8', cwd: repo })
const peerModel = path.join(shared, 'models/zh-mini-mlm-onnx')
const hasPeer = (() => {
  try {
    require.resolve('@huggingface/transformers')
    return fs.existsSync(path.join(peerModel, 'onnx/model.onnx'))
  } catch {
    return false
  }
})()

t.test('the CPU ISA from /proc/cpuinfo flags', async t => {
  t.same(cpuIsa('processor : 0\nflags : fpu sse avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile\n'),
    ['AVX2', 'FMA', 'AVX-512', 'AVX-512 VNNI', 'AVX-512 BF16', 'AMX-BF16'])
  t.same(cpuIsa('processor : 0\n'), [])
})

t.test('statistics, batches and FLOP counts', async t => {
  t.equal(percentile([4, 1, 3, 2], 50), 2.5)
  t.equal(percentile([1, 2, 3, 4, 5], 95), 4.8)
  t.same(spread([3, 1, 2]), { min: 1, median: 2, max: 3 })
  t.same(batchesFor([5, 3, 4, 3], 2, 'sorted'), [[1, 3], [2, 0]], 'length-sorted, stable')
  t.same(batchesFor([5, 3, 4], 2, 'dataset'), [[0, 1], [2]])
  const shape = { hiddenSize: 256, intermediateSize: 1024, numHiddenLayers: 4, vocabSize: 21128 }
  // per layer: 2·B·T·(4H² + 2HI) for the projections and feed-forward, 2·2·B·T²·H for the attention products
  t.equal(encoderFlops(shape, 2, 10), 4 * (2 * 20 * (4 * 256 * 256 + 2 * 256 * 1024) + 4 * 2 * 100 * 256))
})

t.test('pet bench --no-peer --json: summary line, JSON and markdown reports', async t => {
  const dir = tmpDir()
  const outJson = path.join(dir, 'b.json')
  const outMd = path.join(dir, 'b.md')
  const r = bench('--limit', '16', '--runs', '1', '--batch-sizes', '1,8', '--no-peer', '--train-batch-size', '4',
    '--train-steps', '1', '--out-json', outJson, '--out-md', outMd, '--json')
  t.equal(r.status, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  const summary = JSON.parse(lines[lines.length - 1])
  t.ok(summary.ours_sentences_per_s > 0, 'ours_sentences_per_s')
  t.equal(summary.peer_sentences_per_s, null)
  t.equal(summary.ratio, null)
  t.equal(summary.n, 16)
  t.ok(summary.ours_peak_rss_mb > 0)
  t.ok(summary.train_steps_per_s > 0)
  t.ok(summary.ours_bf16_sentences_per_s > 0, 'ours_bf16_sentences_per_s')
  t.ok(summary.bf16_label_agreement >= 0.9 && summary.bf16_label_agreement <= 1, `bf16_label_agreement ${summary.bf16_label_agreement}`)
  t.ok(summary.train_bf16_steps_per_s > 0, 'train_bf16_steps_per_s')
  t.ok(summary.gemm_fp32_gflop_per_s > 0 && summary.gemm_bf16_gflop_per_s > 0, 'GEMM rates measured')
  t.same(summary.cpu_isa, cpuIsa(), 'the ISA extensions /proc/cpuinfo reports')
  const report = JSON.parse(fs.readFileSync(outJson, 'utf8'))
  t.same(report.ours_bf16.by_batch_size.map((b: { batch_size: number }) => b.batch_size), [1, 8])
  for (const b of [...report.ours.by_batch_size, ...report.ours_bf16.by_batch_size]) t.ok(b.gemm_share > 0, 'executed GFLOP/s against the GEMM rate')
  t.ok(report.training_bf16.steps_per_s.median > 0)
  t.equal(report.machine.cpu, os.cpus()[0]?.model.trim() ?? 'unknown', 'the CPU model os.cpus() reports')
  t.ok(report.machine.cores >= 1)
  t.match(report.machine.torch, /^\d+\.\d+/, 'a LibTorch version')
  t.match(report.machine.blas, /\S/, 'a BLAS named')
  t.same(report.ours.by_batch_size.map((b: { batch_size: number }) => b.batch_size), [1, 8])
  for (const b of report.ours.by_batch_size) {
    for (const k of ['sentences_per_s', 'p50_ms', 'p95_ms']) {
      t.ok(b[k].min <= b[k].median && b[k].median <= b[k].max, `${k} at batch ${b.batch_size} is min/median/max`)
    }
    t.equal(b.labeled, 16)
  }
  t.equal(report.ours.label_changes, 0, 'batch size does not change a prediction')
  t.equal(report.peer, null)
  t.ok(report.training.steps_per_s.median > 0)
  const md = fs.readFileSync(outMd, 'utf8')
  t.match(md, /\| side \| batch \| sentences\/s/)
  t.match(md, /LibTorch/)
  t.match(md, /\| ours bf16 \| 8/)
  t.match(md, /GEMM rate at start/)
  // the causal LM beside it (../shared/models/zh-mini-gpt by default)
  const g = report.gpt
  t.ok(g, 'the GPT was benched')
  t.same(g.fp32.by_batch_size.map((b: { batch_size: number }) => b.batch_size), [1, 8])
  t.ok(summary.gpt_sentences_per_s > 0 && summary.gpt_bf16_sentences_per_s > 0, 'GPT scoring in both precisions')
  t.ok(summary.gpt_train_steps_per_s > 0 && summary.gpt_train_bf16_steps_per_s > 0, 'GPT training in both precisions')
  // zh-mini-gpt's LM loss is about 4.9 on its corpus: finite, and well below a uniform guess's ln(V)
  t.ok(g.training.first_loss > 2 && g.training.first_loss < Math.log(21128), `GPT training's LM loss ${g.training.first_loss}`)
  t.equal(g.fp32.by_batch_size[0].accuracy, g.fp32.by_batch_size[1].accuracy, 'batch size does not change a GPT prediction')
  t.same(g.labels.rows.map((r: { labels: number }) => r.labels), [2, 15, 120])
  for (const row of g.labels.rows) t.ok(row.tokensPerExample < row.separatePassTokens, `${row.case}: one branched pass reads fewer tokens than k passes`)
  t.match(md, /GPT zh-mini-gpt, pattern/)
})

t.test('pet bench --no-gpt skips the causal LM', async t => {
  const dir = tmpDir()
  const r = bench('--limit', '8', '--runs', '1', '--batch-sizes', '8', '--no-peer', '--no-train', '--no-gpt',
    '--out-json', path.join(dir, 'b.json'), '--out-md', path.join(dir, 'b.md'), '--json')
  t.equal(r.status, 0, r.stderr)
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!)
  t.equal(summary.gpt_sentences_per_s, null)
  const report = JSON.parse(fs.readFileSync(path.join(dir, 'b.json'), 'utf8'))
  t.equal(report.gpt, null)
  t.equal(report.config.schedule, 'tasks', 'the default schedule')
  const b = report.ours.by_batch_size[0]
  t.ok(b.executed_gflop < b.encoder_gflop, 'the task schedule runs the last layer at the [MASK] rows only')
  t.equal(report.cpu.gemm.kernels, report.ours.kernels, 'the GEMM probe runs the scoring\'s kernels')
})

t.test('pet bench --schedule plain --kernels aten: the plain forward pass on ATen\'s ops, probe included', async t => {
  const dir = tmpDir()
  const r = bench('--limit', '8', '--runs', '1', '--batch-sizes', '8', '--no-peer', '--no-train', '--no-gpt',
    '--schedule', 'plain', '--kernels', 'aten', '--out-json', path.join(dir, 'b.json'), '--out-md', path.join(dir, 'b.md'), '--json')
  t.equal(r.status, 0, r.stderr)
  const report = JSON.parse(fs.readFileSync(path.join(dir, 'b.json'), 'utf8'))
  t.equal(report.config.schedule, 'plain')
  t.equal(report.config.kernels, 'aten')
  for (const s of [report.ours, report.ours_bf16]) {
    t.equal(s.kernels, 'aten', 'the model ran ATen\'s ops')
    t.equal(s.by_batch_size[0].executed_gflop, s.by_batch_size[0].encoder_gflop, 'the plain pass runs every layer at every position')
  }
  t.equal(report.cpu.gemm.kernels, 'aten', 'the GEMM probe too')
  t.match(fs.readFileSync(path.join(dir, 'b.md'), 'utf8'), /one plain forward pass/)
})

t.test('--schedule and --kernels are flags of the options table: a bad value is a usage error (a PetError)', async t => {
  const w = cliWorkflow(workflows.bench)
  t.same(parseFlags(['--schedule', 'plain', '--kernels', 'onednn'], w).options, { schedule: 'plain', kernels: 'onednn' })
  t.same(parseFlags([], w).options, {}, 'unset: the table\'s default schedule, the build\'s kernels')
  t.throws(() => parseFlags(['--kernels', 'mkl'], w), { name: 'PetError', code: 'EUSAGE', message: /Expected one of 'onednn', 'aten' for --kernels but received "mkl"/ })
  t.throws(() => parseFlags(['--schedule', 'fast'], w), { name: 'PetError', code: 'EUSAGE', message: /Expected one of 'tasks', 'plain' for --schedule/ })
  const err = (() => { try { parseFlags(['--schedule', 'fast'], w) } catch (e) { return e } })()
  t.ok(err instanceof PetError, 'an instance of PetError')
})

t.test('pet bench with the transformers.js peer', { skip: hasPeer ? false : 'no @huggingface/transformers or no ONNX model' }, async t => {
  const dir = tmpDir()
  const r = bench('--limit', '16', '--runs', '1', '--batch-sizes', '1,8', '--no-train', '--no-gpt', '--peer-model', peerModel,
    '--out-json', path.join(dir, 'b.json'), '--out-md', path.join(dir, 'b.md'), '--json')
  t.equal(r.status, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  const summary = JSON.parse(lines[lines.length - 1])
  t.ok(summary.peer_sentences_per_s > 0)
  t.ok(summary.ratio > 0)
  t.equal(summary.ratio, summary.ours_sentences_per_s / summary.peer_sentences_per_s)
  t.same(summary.agreement, { same: 16, of: 16 }, 'both predict the same labels')
  t.equal(summary.peer_accuracy, summary.ours_accuracy)
  const report = JSON.parse(fs.readFileSync(path.join(dir, 'b.json'), 'utf8'))
  t.equal(report.peer.tokenizer_agree, report.peer.tokenizer_checked, 'transformers.js tokenizes to our ids')
})

t.test('pet bench usage errors', async t => {
  const r = bench('--batch-sizes', '1,x', '--no-peer')
  t.equal(r.status, 2)
  t.match(r.stderr, /Expected integer in \[1, 65536\] for --batch-sizes\[1\] but received "x"/)
  const r2 = bench('--runs', '0')
  t.equal(r2.status, 2)
  const r3 = bench('--kernels', 'mkl', '--no-peer')
  t.equal(r3.status, 2, 'a bad --kernels exits 2')
  t.match(r3.stderr, /pet bench: Expected one of 'onednn', 'aten' for --kernels but received "mkl"/)
})
