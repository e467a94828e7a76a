// Data-parallel training over c10d (Gloo) on the loopback interface: two workers take the steps of one process
// with the same global batch; faults (a killed worker, a port in use, a wrong world size, different models, a
// worker that never comes) end every worker with a clear error within the timeout; resume finishes a killed run.
import t from 'tap'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { MaskedLM } from '../lib/model'
import { native } from '../lib/native'
import { ptune, train, zeroShot } from '../lib/index'
import { hashTensors } from './helpers/hash'
import { sentimentLines } from './helpers/cli'
import { readSafetensors } from '../lib/safetensors'
import { miniMlm, repo, shared, tinyBertDir, tmpDir } from './helpers/paths'

const dir = tmpDir()
const trainFile = path.join(dir, 'train.jsonl')
const devFile = path.join(dir, 'dev.jsonl')
fs.writeFileSync(trainFile, sentimentLines('train.jsonl', 0, 24))
fs.writeFileSync(devFile, sentimentLines('valid.jsonl', 0, 40))
const P1 = { pattern: '[MASK]满意。{text}', verbalizer: { positive: ['很'], negative: ['不'] } }

// The mini model without dropout: with dropout, N workers draw other masks than one process (as in any
// data-parallel trainer), so only a dropout-free model can end with the same weights.
const noDropout = path.join(dir, 'mini-no-dropout')
fs.mkdirSync(noDropout)
for (const f of fs.readdirSync(miniMlm)) if (f !== 'config.json') fs.symlinkSync(path.join(miniMlm, f), path.join(noDropout, f))
const config = JSON.parse(fs.readFileSync(path.join(miniMlm, 'config.json'), 'utf8'))
fs.writeFileSync(path.join(noDropout, 'config.json'), JSON.stringify({ ...config, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 }))

// Tolerance for "the same weights": the two runs add the same fp32 terms in another order (each worker's mean over
// its share, then the all-reduce), so the gradients agree to about 1e-6 relative. AdamW's update m / (sqrt(v) + eps)
// is at most about lr in size whatever the gradient's, and where a gradient is tiny (rare tokens' embedding rows) a
// relative change of 1e-6 in it can move that update by a good part of lr. So the bound is lr per step: 6 steps at
// lr 1e-4 give 6e-4 in the worst case. We require 6x less for the largest difference (measured: 1.5e-5) and 1e-8 for
// the mean absolute difference over all weights (the bulk moves together).
const WEIGHT_TOL = 1e-4
const MEAN_TOL = 1e-8
function maxDiff (a: Float32Array, b: Float32Array): number {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

function sumDiff (a: Float32Array, b: Float32Array): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i])
  return s
}

const available = native().distInfo().available
t.test('this build has c10d with Gloo', { skip: false }, async t => {
  t.ok(available, native().distInfo().reason || 'available')
})

t.test('PET: 2 workers end with the weights and dev accuracy of 1 process on the same global batch', { skip: !available }, async t => {
  const common = { ...P1, model: noDropout, train: trainFile, dev: devFile, epochs: 2, batchSize: 8, maskRate: 0, seed: 5, threads: 1, evalBatchSize: 8 }
  const one = await train({ ...common, out: path.join(dir, 'pet1') })
  const events: string[] = []
  const two = await train({ ...common, out: path.join(dir, 'pet2'), nproc: 2, distTimeout: 60, onProgress: e => { events.push(e.kind) } })
  // the dev set (5 batches of 8) is scored sharded: each worker its batches, the scores summed
  t.equal(two.devAccuracy, one.devAccuracy, `dev accuracy ${one.devAccuracy}`)
  t.same(two.history.map(h => h.dev), one.history.map(h => h.dev), 'the same dev accuracy every epoch')
  t.equal(two.bestEpoch, one.bestEpoch)
  t.equal(two.steps, one.steps, 'the same number of (global) steps')
  two.history.forEach((h, i) => t.ok(Math.abs(h.loss - one.history[i].loss) < 1e-5, `epoch ${i + 1} loss ${h.loss} vs ${one.history[i].loss}`))
  t.ok(events.includes('train') && events.includes('epoch'), 'rank 0 relays its progress')
  const a = readSafetensors(path.join(one.model, 'model.safetensors'))
  const b = readSafetensors(path.join(two.model, 'model.safetensors'))
  t.same([...b.keys()].sort(), [...a.keys()].sort())
  let worst = 0
  let sum = 0
  let count = 0
  for (const [name, x] of a) {
    const y = b.get(name)!.data as Float32Array
    worst = Math.max(worst, maxDiff(x.data as Float32Array, y))
    sum += sumDiff(x.data as Float32Array, y)
    count += y.length
  }
  t.ok(worst < WEIGHT_TOL, `largest weight difference ${worst.toExponential(2)} < ${WEIGHT_TOL}`)
  t.ok(sum / count < MEAN_TOL, `mean absolute weight difference ${(sum / count).toExponential(2)} < ${MEAN_TOL}`)
  for (const f of ['report.json', 'history.json', 'best/pet.json']) t.ok(fs.existsSync(path.join(dir, 'pet2', f)), `rank 0 wrote ${f}`)
})

// zh-mini-gpt (GPT-2) without dropout, for the same check with a causal LM
const miniGpt = path.join(shared, 'models/zh-mini-gpt')
const gptNoDropout = path.join(dir, 'gpt-no-dropout')
fs.mkdirSync(gptNoDropout)
for (const f of fs.readdirSync(miniGpt)) if (f !== 'config.json') fs.symlinkSync(path.join(miniGpt, f), path.join(gptNoDropout, f))
const gptConfig = JSON.parse(fs.readFileSync(path.join(miniGpt, 'config.json'), 'utf8'))
fs.writeFileSync(path.join(gptNoDropout, 'config.json'), JSON.stringify({ ...gptConfig, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 }))

t.test('PET with a GPT: 2 workers end with the weights and dev accuracy of 1 process', { skip: !available }, async t => {
  const common = { pattern: '感觉如何？{text}[MASK]满意。', verbalizer: P1.verbalizer, model: gptNoDropout, train: trainFile, dev: devFile, epochs: 2, batchSize: 8, seed: 5, threads: 1, evalBatchSize: 8 }
  const one = await train({ ...common, out: path.join(dir, 'gpt1') })
  const two = await train({ ...common, out: path.join(dir, 'gpt2'), nproc: 2, distTimeout: 60 })
  t.equal(two.steps, one.steps, 'the same number of (global) steps')
  t.same(two.history.map(h => h.dev), one.history.map(h => h.dev), 'the same dev accuracy every epoch')
  two.history.forEach((h, i) => t.ok(Math.abs(h.loss - one.history[i].loss) < 1e-5, `epoch ${i + 1} LM loss ${h.loss} vs ${one.history[i].loss}`))
  const a = readSafetensors(path.join(one.model, 'model.safetensors'))
  const b = readSafetensors(path.join(two.model, 'model.safetensors'))
  t.same([...b.keys()].sort(), [...a.keys()].sort())
  let worst = 0
  let moved = 0
  const base = readSafetensors(path.join(miniGpt, 'model.safetensors'))
  for (const [name, x] of a) {
    const y = b.get(name)!.data as Float32Array
    worst = Math.max(worst, maxDiff(x.data as Float32Array, y))
    const z = base.get(name)
    if (z) moved = Math.max(moved, maxDiff(x.data as Float32Array, z.data as Float32Array))
  }
  t.ok(moved > 1e-5, `training moved the weights (by up to ${moved.toExponential(2)})`)
  t.ok(worst < WEIGHT_TOL, `largest weight difference ${worst.toExponential(2)} < ${WEIGHT_TOL}`)
})

t.test('frozen P-tuning: 2 workers learn the prompt rows of 1 process; every base weight stays bit-identical', { skip: !available }, async t => {
  const common = { model: noDropout, train: trainFile, dev: devFile, verbalizer: P1.verbalizer, promptTokens: 4, epochs: 2, batchSize: 8, seed: 7, threads: 1, maskRate: 0, evalBatchSize: 8 }
  const one = await ptune({ ...common, out: path.join(dir, 'pt1') })
  const two = await ptune({ ...common, out: path.join(dir, 'pt2'), nproc: 2, distTimeout: 60 })
  t.equal(two.devAccuracy, one.devAccuracy, `dev accuracy ${one.devAccuracy}`)
  const rows = (r: typeof one) => readSafetensors(path.join(r.adapter!, 'adapter_model.safetensors')).get('prompt_embeddings')!.data as Float32Array
  const d = maxDiff(rows(one), rows(two))
  // the same bound as PET's (ptune's frozen lr is larger, but every prompt row gets a large gradient: measured 6e-8)
  t.ok(d < WEIGHT_TOL, `largest prompt-row difference ${d.toExponential(2)}`)
  const base = await MaskedLM.load(noDropout)
  const before = hashTensors(base)
  const wordsBefore = base.getTensor('bert.embeddings.word_embeddings.weight').data
  const { loadAdapter } = await import('../lib/ptuning/adapter')
  loadAdapter(base, two.adapter!)
  const after = hashTensors(base)
  const wordsAfter = base.getTensor('bert.embeddings.word_embeddings.weight').data
  const H = base.info.config.hiddenSize
  base.dispose()
  for (const [name, h] of before) if (name !== 'bert.embeddings.word_embeddings.weight') t.equal(after.get(name), h, `${name} bit-identical`)
  // the word embeddings: only the 4 prompt rows ([unused1..4] = ids 1..4) differ
  const changed = new Set<number>()
  for (let i = 0; i < wordsBefore.length; i++) if (!Object.is(wordsBefore[i], wordsAfter[i])) changed.add(Math.floor(i / H))
  t.same([...changed].sort((a, b) => a - b), [1, 2, 3, 4], 'every other word-embedding row bit-identical')
})

t.test('an abort stops every worker at the same step; resume continues to the uninterrupted result', { skip: !available }, async t => {
  const common = { ...P1, model: noDropout, train: trainFile, dev: devFile, epochs: 2, batchSize: 8, maskRate: 0, seed: 5, threads: 1, evalBatchSize: 8, nproc: 2, distTimeout: 60 }
  const out = path.join(dir, 'aborted')
  const ac = new AbortController()
  const err = await train({ ...common, out, signal: ac.signal, onProgress: e => { if (e.kind === 'epoch') ac.abort() } }).catch(e => e)
  t.equal(err.code, 'EABORT', err.message)
  const state = JSON.parse(fs.readFileSync(path.join(out, 'last', 'state.json'), 'utf8'))
  t.equal(state.epoch, 1, 'stopped in epoch 2')
  const resumed = await train({ ...common, out, resume: true })
  const whole = JSON.parse(fs.readFileSync(path.join(dir, 'pet2', 'history.json'), 'utf8'))
  t.same(resumed.history.map(h => [h.loss, h.dev]), whole.map((h: { loss: number, dev: number }) => [h.loss, h.dev]),
    'the same losses and dev accuracies as the uninterrupted 2-worker run')
})

t.test('finetune ([CLS] head) and pretrain (MLM) train on 2 workers', { skip: !available }, async t => {
  const { finetune, pretrain } = await import('../lib/index')
  const common = { model: noDropout, train: trainFile, dev: devFile, epochs: 1, batchSize: 8, seed: 2, threads: 1, evalBatchSize: 8 }
  const one = await finetune({ ...common, out: path.join(dir, 'ft1') })
  const two = await finetune({ ...common, out: path.join(dir, 'ft2'), nproc: 2, distTimeout: 60 })
  t.equal(two.devAccuracy, one.devAccuracy, 'the classifier: the dev accuracy of 1 process')
  t.ok(Math.abs(two.history[0].loss - one.history[0].loss) < 1e-5, `the same loss (${two.history[0].loss} vs ${one.history[0].loss})`)
  const pre = await pretrain({ model: noDropout, data: trainFile, epochs: 1, batchSize: 8, threads: 1, out: path.join(dir, 'pre2'), nproc: 2, distTimeout: 60 })
  t.equal(pre.steps, 3, 'MLM pretraining: 24 texts in 3 global batches')
  // zh-mini-mlm's MLM loss is about 2.9 on its corpus: well below a uniform guess's ln(V)
  t.ok(pre.finalMlmLoss !== null && pre.finalMlmLoss > 0 && pre.finalMlmLoss < Math.log(21128), `MLM loss ${pre.finalMlmLoss} below ln(21128)`)
})

t.test('sharded zero-shot: 2 workers give every score of 1 process, written in input order', { skip: !available }, async t => {
  const common = { ...P1, data: devFile, batchSize: 8, threads: 1 }
  const one = await zeroShot({ ...common, out: path.join(dir, 'zs1.jsonl') })
  const two = await zeroShot({ ...common, out: path.join(dir, 'zs2.jsonl'), nproc: 2, distTimeout: 60 })
  t.same(two.predictions, one.predictions, 'the same scores, bit for bit (each batch scored as one process scores it)')
  t.equal(two.accuracy, one.accuracy)
  t.equal(fs.readFileSync(path.join(dir, 'zs2.jsonl'), 'utf8'), fs.readFileSync(path.join(dir, 'zs1.jsonl'), 'utf8'), 'rank 0 wrote the same file')
})

t.test('sharded zero-shot with a GPT: 2 workers give every score of 1 process', { skip: !available }, async t => {
  const common = { pattern: '感觉如何？{text}[MASK]满意。', verbalizer: P1.verbalizer, model: miniGpt, data: devFile, batchSize: 8, threads: 1 }
  const one = await zeroShot(common)
  const two = await zeroShot({ ...common, nproc: 2, distTimeout: 60 })
  t.equal(one.predictions.length, 40)
  t.same(two.predictions, one.predictions, 'the same scores, bit for bit')
  t.equal(two.accuracy, one.accuracy)
})

t.test('sharded predict: 2 workers give every prediction of 1 process, PET and [CLS] models alike', { skip: !available }, async t => {
  const { predict } = await import('../lib/index')
  for (const run of ['pet2', 'ft1']) {
    const common = { model: path.join(dir, run), data: devFile, batchSize: 8, threads: 1 }
    const one = await predict({ ...common, out: path.join(dir, `${run}-p1.jsonl`) })
    const two = await predict({ ...common, out: path.join(dir, `${run}-p2.jsonl`), nproc: 2, distTimeout: 60 })
    t.equal(two.mode, one.mode)
    t.same(two.predictions, one.predictions, `${one.mode}: the same scores, bit for bit`)
    t.equal(two.accuracy, one.accuracy)
    t.equal(fs.readFileSync(path.join(dir, `${run}-p2.jsonl`), 'utf8'), fs.readFileSync(path.join(dir, `${run}-p1.jsonl`), 'utf8'), 'rank 0 wrote the same file')
  }
})

t.test('ensemble, iPET and distill on 2 workers: members train data-parallel, pseudo-labels scored sharded', { skip: !available }, async t => {
  const { ensemble, ipet, distill } = await import('../lib/index')
  const unlabeled = path.join(dir, 'unlabeled.jsonl')
  fs.writeFileSync(unlabeled, sentimentLines('train.jsonl', 100, 140))
  const texts = fs.readFileSync(unlabeled, 'utf8').trim().split('\n').map(l => JSON.parse(l).text)
  const common = {
    patterns: [P1.pattern, '[MASK]好。{text}'], verbalizer: P1.verbalizer, model: noDropout, train: trainFile, dev: devFile, test: devFile,
    unlabeled, epochs: 1, batchSize: 8, maskRate: 0, seed: 4, threads: 1, evalBatchSize: 8
  }
  const softOf = (file: string) => fs.readFileSync(file, 'utf8').trim().split('\n').map(l => JSON.parse(l))
  // Soft labels: each member's weights agree with 1 process's to fp32 summation order (see WEIGHT_TOL), so their
  // scores (logits, |x| < 30) agree to about 1e-4; the label each example gets must be the same.
  const closeSoft = (a: Array<{ text: string, logits: number[] }>, b: typeof a, what: string) => {
    t.same(b.map(r => r.text), texts, `${what}: rank 0 wrote every unlabeled example once, in input order`)
    let worst = 0
    a.forEach((r, i) => r.logits.forEach((x, l) => { worst = Math.max(worst, Math.abs(x - b[i].logits[l])) }))
    t.ok(worst < 1e-3, `${what}: largest soft-label difference ${worst.toExponential(2)} < 1e-3`)
    const argmax = (x: number[]) => x.indexOf(Math.max(...x))
    t.same(b.map(r => argmax(r.logits)), a.map(r => argmax(r.logits)), `${what}: every pseudo-label the same`)
  }

  const one = await ensemble({ ...common, out: path.join(dir, 'ens1') })
  const events: string[] = []
  const two = await ensemble({ ...common, out: path.join(dir, 'ens2'), nproc: 2, distTimeout: 60, onProgress: e => { events.push(e.kind) } })
  t.same(two.patterns.map(p => [p.weight, p.devAccuracy, p.testAccuracy]), one.patterns.map(p => [p.weight, p.devAccuracy, p.testAccuracy]),
    'each member: the weight, dev and test accuracy of 1 process')
  t.equal(two.devAccuracy, one.devAccuracy, `the ensemble's dev accuracy ${one.devAccuracy}`)
  t.ok(events.includes('train') && events.includes('stage'), 'rank 0 relays its progress')
  closeSoft(softOf(one.softLabels!), softOf(two.softLabels!), 'ensemble')
  t.ok(fs.existsSync(path.join(dir, 'ens2', 'ensemble.json')) && fs.existsSync(path.join(dir, 'ens2', 'pattern-2', 'best', 'pet.json')), 'rank 0 wrote the run')

  // iPET: the second generation trains on examples the first labeled; with the same pseudo-labels, the same sets.
  const ip = { ...common, generations: 2, scaleFactor: 2 }
  const ipOne = await ipet({ ...ip, out: path.join(dir, 'ipet1') })
  const ipTwo = await ipet({ ...ip, out: path.join(dir, 'ipet2'), nproc: 2, distTimeout: 60 })
  t.same(ipTwo.generations.map(g => g.models.map(m => m.examples)), ipOne.generations.map(g => g.models.map(m => m.examples)), 'the same training-set sizes per generation')
  const grown = ipTwo.generations[1].models[0].examples
  // 24 more wanted, in the labeled set's label ratio: a label predicted too rarely gives what there is
  t.ok(grown > 24 && grown <= 48, `generation 1: 24 labeled + ${grown - 24} pseudo-labeled`)
  t.same(ipTwo.generations.map(g => g.models.map(m => m.devAccuracy)), ipOne.generations.map(g => g.models.map(m => m.devAccuracy)), 'the same dev accuracy per member')
  closeSoft(softOf(ipOne.softLabels), softOf(ipTwo.softLabels), 'iPET')

  // distill from the ensemble's soft labels: the student's loss and dev accuracy of 1 process
  const d = { softLabels: one.softLabels!, labels: one.labels, model: noDropout, dev: devFile, distillEpochs: 1, batchSize: 8, seed: 4, threads: 1, evalBatchSize: 8 }
  const dOne = await distill({ ...d, out: path.join(dir, 'dist1') })
  const dTwo = await distill({ ...d, out: path.join(dir, 'dist2'), nproc: 2, distTimeout: 60 })
  t.equal(dTwo.steps, dOne.steps, `${dOne.steps} global steps`)
  t.ok(Math.abs(dTwo.history[0].loss - dOne.history[0].loss) < 1e-5, `the same loss (${dTwo.history[0].loss} vs ${dOne.history[0].loss})`)
  t.equal(dTwo.devAccuracy, dOne.devAccuracy, `the student's dev accuracy ${dOne.devAccuracy}`)
})

t.test('a worker given --device cuda takes the GPU of its LOCAL_RANK', async t => {
  const { deviceOf } = await import('../lib/workflows/common')
  const saved = { RANK: process.env.RANK, WORLD_SIZE: process.env.WORLD_SIZE, LOCAL_RANK: process.env.LOCAL_RANK }
  t.teardown(() => { for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v } })
  t.equal(deviceOf('cuda'), 'cuda', 'a single process keeps cuda')
  Object.assign(process.env, { RANK: '3', WORLD_SIZE: '4', LOCAL_RANK: '1' })
  t.equal(deviceOf('cuda'), 'cuda:1', 'rank 3 with LOCAL_RANK 1: cuda:1')
  t.equal(deviceOf('cuda:0'), 'cuda:0', 'an explicit GPU stays')
  t.equal(deviceOf('cpu'), 'cpu', 'cpu stays')
})

// ---- faults, through the CLI with the environment torchrun would set ----

interface Ended { code: number | null, signal: string | null, stderr: string, seconds: number }

function worker (rank: number, world: number, port: number, args: string[], extraEnv: Record<string, string> = {}) {
  const t0 = Date.now()
  const child = spawn(process.execPath, [path.join(repo, 'bin/pet.js'), ...args], {
    cwd: repo,
    env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(rank), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), ...extraEnv },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr!.on('data', d => { stderr += String(d) })
  const ended = new Promise<Ended>(resolve => child.on('exit', (code, signal) => resolve({ code, signal, stderr, seconds: (Date.now() - t0) / 1000 })))
  return { child, ended }
}

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)) })
  })
}

const petArgs = (out: string, more: string[] = []) => ['train', '--model', noDropout, '--train', trainFile, '--dev', devFile,
  '--pattern', P1.pattern, '--verbalizer', JSON.stringify(P1.verbalizer), '--threads', '1', '--seed', '3', '--out', out, ...more]

t.test('a killed worker makes the other exit non-zero within the timeout; resume then finishes the run', { skip: !available }, async t => {
  const out = path.join(dir, 'killed')
  const port = await freePort()
  const args = petArgs(out, ['--epochs', '6', '--batch-size', '4', '--dist-timeout', '20'])
  const w0 = worker(0, 2, port, args)
  const w1 = worker(1, 2, port, args)
  const state = path.join(out, 'last', 'state.json')
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      try {
        if (fs.existsSync(state) && JSON.parse(fs.readFileSync(state, 'utf8')).epoch >= 1) { clearInterval(timer); resolve() }
      } catch {}
    }, 20)
    void w0.ended.then(() => { clearInterval(timer); reject(new Error('rank 0 ended before the kill')) })
  })
  const killedAt = Date.now()
  w1.child.kill('SIGKILL')
  const e0 = await w0.ended
  const waited = (Date.now() - killedAt) / 1000
  t.not(e0.code, 0, 'rank 0 exits non-zero')
  t.equal(e0.signal, null, 'by itself, not killed')
  t.ok(waited < 20 + 10, `within the timeout (${waited.toFixed(1)} s)`)
  t.match(e0.stderr, /failed|died|closed/i, `a message: ${e0.stderr.trim().split('\n').pop()}`)
  t.ok(fs.existsSync(state), 'the last complete checkpoint is still there')

  // resume with the library's own launcher (a different way to start the same 2 workers)
  const resumed = await train({ ...P1, model: noDropout, train: trainFile, dev: devFile, epochs: 6, batchSize: 4, seed: 3, threads: 1, out, resume: true, nproc: 2, distTimeout: 60 })
  t.equal(resumed.history.length, 6, 'all epochs in the history')
  t.notOk(fs.existsSync(path.join(out, 'last')), 'the finished run removed its resume state')
})

t.test('setup errors are clear and quick', { skip: !available }, async t => {
  await t.test('a port in use', async t => {
    const blocker = net.createServer()
    const port = await new Promise<number>(resolve => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as net.AddressInfo).port)))
    t.teardown(() => { blocker.close() })
    const e = await worker(0, 2, port, petArgs(path.join(dir, 'busy'), ['--epochs', '1', '--dist-timeout', '5'])).ended
    t.not(e.code, 0)
    t.match(e.stderr, /rank 0 cannot serve the rendezvous on 127\.0\.0\.1:\d+ \(is MASTER_PORT in use\?\)/)
  })

  await t.test('workers that disagree on the world size', async t => {
    const port = await freePort()
    const args = petArgs(path.join(dir, 'world'), ['--epochs', '1', '--dist-timeout', '10'])
    const [a, b] = await Promise.all([worker(0, 2, port, args).ended, worker(1, 3, port, args).ended])
    t.not(a.code, 0)
    t.not(b.code, 0)
    t.match(b.stderr, /disagree on the world size: rank 1 has WORLD_SIZE=3, rank 0 has 2/)
    t.match(a.stderr, /disagree on the world size/)
  })

  await t.test('different models on the ranks', async t => {
    const port = await freePort()
    const out = path.join(dir, 'models')
    const other = tinyBertDir()
    const [a, b] = await Promise.all([
      worker(0, 2, port, petArgs(out, ['--epochs', '1', '--dist-timeout', '20'])).ended,
      worker(1, 2, port, petArgs(out, ['--epochs', '1', '--dist-timeout', '20', '--model', other])).ended
    ])
    t.not(a.code, 0)
    t.not(b.code, 0)
    t.match(a.stderr, /the model \(a fingerprint of every weight\) differs across the workers/)
    t.match(b.stderr, /differs across the workers/)
  })

  await t.test('a worker that never comes', async t => {
    const e = await worker(0, 2, await freePort(), petArgs(path.join(dir, 'alone'), ['--epochs', '1', '--dist-timeout', '3'])).ended
    t.not(e.code, 0)
    t.match(e.stderr, /rank 1 did not join the rendezvous at 127\.0\.0\.1:\d+ within 3 s/)
    t.ok(e.seconds < 3 + 15, `gave up after ${e.seconds.toFixed(1)} s`)
  })

  await t.test('no --out in a distributed worker, and bad environment values', async t => {
    const args = petArgs('x').filter((a, i, all) => a !== '--out' && all[i - 1] !== '--out')
    const e = await worker(0, 2, await freePort(), args).ended
    t.match(e.stderr, /needs --out: every worker must name the same run directory/)
    const bad = await worker(0, 2, 1, petArgs(path.join(dir, 'bad')), { RANK: 'one' }).ended
    t.match(bad.stderr, /RANK must be an integer in \[0, 65535\], got 'one'/)
  })
})
