// #26: the tiny families (RoBERTa, XLM-R, ALBERT, ERNIE) in bf16 and data-parallel. bf16: the forward pass stays
// within bf16 rounding of HF's fp32 reference, zero-shot scores stay close to fp32's (RoBERTa and XLM-R score their
// multi-token label words by log-probability, ALBERT and ERNIE their one-token words by logit), and PET and frozen
// P-tuning lower the loss. Data-parallel (Gloo): 2 workers end with the losses and the weights of 1 process on the
// same global batch, as test/96 asserts for BERT: PET on every family (XLM-R's workers started through the CLI with
// the environment torchrun sets, the others by nproc), frozen P-tuning on RoBERTa (prompt rows from promptTokenId,
// no [unusedN] in a BPE vocabulary), and PET in bf16 on ERNIE.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { MaskedLM } from '../lib/model'
import { native } from '../lib/native'
import { ptune } from '../lib/workflows/ptune'
import { train } from '../lib/workflows/train'
import { zeroShot } from '../lib/workflows/zero-shot'
import { referenceBatch } from './helpers/parity'
import { readSafetensors } from '../lib/safetensors'
import { allPositions, maxAbs, maxAbsDiff } from './helpers/tensors'
import { fixtures, repo, tmpDir } from './helpers/paths'

const english = { pattern: '{text} [SEP] It was[MASK].', verbalizer: { pos: ['good'], neg: ['bad'] },
  data: [{ text: 'a good movie', label: 'pos' }, { text: 'a bad film', label: 'neg' }, { text: 'good fun', label: 'pos' }, { text: 'bad acting', label: 'neg' }],
  more: ['the plot was thin', 'I loved every minute', 'boring and slow', 'great cast, weak script'] }
const chinese = { pattern: '{text}[SEP]这是[MASK]的。', verbalizer: { pos: ['好'], neg: ['坏'] },
  data: [{ text: '服务很好', label: 'pos' }, { text: '质量太差', label: 'neg' }, { text: '非常满意', label: 'pos' }, { text: '很失望', label: 'neg' }],
  more: ['物流很快', '包装破损', '还会再来', '价格太贵了'] }
const families = [['roberta', english], ['xlmr', english], ['albert', chinese], ['ernie', chinese]] as const
type Task = typeof english | typeof chinese
const folder = (family: string) => path.join(fixtures, 'families', `tiny-${family}`)
const dir = tmpDir('pet-families-pp-')
const decreasing = (losses: number[]) => losses.length >= 2 && losses.every(Number.isFinite) && losses[losses.length - 1] < losses[0]
const show = (losses: number[]) => losses.map(l => l.toFixed(5)).join(' → ')
// bf16 keeps 8 significant bits (rounding moves a value by up to 2^-8 ≈ 4e-3 of its size); a score or loss that went
// through a few such GEMMs (fp32 accumulation, LayerNorm and softmax) is expected within 2e-2 relative of fp32's
// (measured: under 1e-4 absolute). The absolute term keeps the bound sensible for a logit near 0.
const near = (a: number, b: number) => Number.isFinite(a) && Number.isFinite(b) && Math.abs(a - b) <= 1e-3 + 2e-2 * Math.abs(b)

for (const [family, task] of families) {
  t.test(`${family} in bf16: the forward pass within bf16 rounding of HF's fp32 reference`, async t => {
    const ref = readSafetensors(path.join(fixtures, 'families', `tiny-${family}_reference.safetensors`))
    const batch = referenceBatch(ref)
    const positions = allPositions(batch.batchSize, batch.seqLen)
    const run = async (precision: 'fp32' | 'bf16') => {
      const model = await MaskedLM.load(folder(family), { precision, threads: 1 })
      try {
        t.equal(model.precision, precision)
        return { last: await model.hiddenStates(batch, 'last'), logits: await model.logitsAt(batch, positions) }
      } finally {
        model.dispose()
      }
    }
    const fp32 = await run('fp32')
    const bf16 = await run('bf16')
    for (const [what, key] of [['last hidden', 'last_hidden'], ['logits', 'logits']] as const) {
      const want = ref.get(key)!.data as Float32Array
      const got = what === 'logits' ? bf16.logits : bf16.last
      const err = maxAbsDiff(got, want)
      // measured: 3e-4 to 1.3e-3 of the largest value for the last hidden states, 2e-4 to 9e-4 for the logits
      t.ok(got.every(Number.isFinite) && err <= 2e-2 * maxAbs(want), `${what}: max abs error ${err.toExponential(2)} <= 2e-2 x ${maxAbs(want).toFixed(3)}`)
      const fp32Err = maxAbsDiff(what === 'logits' ? fp32.logits : fp32.last, want)
      // bf16 really is another computation: far from fp32's own error (about 1e-7)
      t.ok(err > 10 * fp32Err, `${what}: bf16's error ${err.toExponential(2)} is bf16's, not fp32's (${fp32Err.toExponential(2)})`)
    }
  })

  t.test(`${family} in bf16: zero-shot scores close to fp32's; PET and frozen P-tuning lower the loss`, async t => {
    const common = { model: folder(family), maxLength: 24, threads: 1, seed: 1 }
    const texts = [...task.data.map(d => d.text), ...task.more]
    const zs = { ...common, data: texts, pattern: task.pattern, verbalizer: task.verbalizer }
    const fp32 = await zeroShot(zs)
    const bf16 = await zeroShot({ ...zs, precision: 'bf16' })
    t.equal(bf16.predictions.length, texts.length)
    let worst = 0
    let moved = 0
    let far = 0
    fp32.predictions.forEach((p, i) => {
      for (const label of ['pos', 'neg']) {
        const a = bf16.predictions[i].scores[label]
        const b = p.scores[label]
        if (!near(a, b)) far++
        worst = Math.max(worst, Math.abs(a - b))
        if (a !== b) moved++
      }
    })
    t.equal(far, 0, `every bf16 score finite and within 1e-3 + 2e-2 relative of fp32's (largest difference ${worst.toExponential(2)})`)
    t.ok(moved > 0, `bf16 scored otherwise than fp32 (${moved} of ${2 * texts.length} scores differ)`)
    const same = fp32.predictions.filter((p, i) => p.label === bf16.predictions[i].label).length
    t.ok(same >= texts.length - 1, `the same label on ${same} of ${texts.length}`)

    const pet = { ...common, train: task.data, dev: task.data, pattern: task.pattern, verbalizer: task.verbalizer, epochs: 3, batchSize: 4, lr: 1e-3 }
    const petFp32 = (await train({ ...pet, out: path.join(dir, `${family}-pet-fp32`) })).history.map(h => h.loss)
    const petBf16 = (await train({ ...pet, precision: 'bf16', out: path.join(dir, `${family}-pet-bf16`) })).history.map(h => h.loss)
    t.ok(decreasing(petBf16), `PET in bf16: the epoch loss goes down (${show(petBf16)})`)
    t.ok(petBf16.length === petFp32.length && petBf16.every((l, i) => near(l, petFp32[i])), `PET: bf16's losses near fp32's (${show(petFp32)})`)
    t.notSame(petBf16, petFp32, 'PET: trained in bf16, not fp32')

    const pt = { ...common, train: task.data, dev: task.data, verbalizer: task.verbalizer, promptTokens: 2, epochs: 3, batchSize: 4, lr: 0.05 }
    const ptFp32 = (await ptune({ ...pt, out: path.join(dir, `${family}-pt-fp32`) })).history.map(h => h.loss)
    const ptBf16 = (await ptune({ ...pt, precision: 'bf16', out: path.join(dir, `${family}-pt-bf16`) })).history.map(h => h.loss)
    t.ok(decreasing(ptBf16), `frozen P-tuning in bf16: the epoch loss goes down (${show(ptBf16)})`)
    t.ok(ptBf16.length === ptFp32.length && ptBf16.every((l, i) => near(l, ptFp32[i])), `P-tuning: bf16's losses near fp32's (${show(ptFp32)})`)
    t.notSame(ptBf16, ptFp32, 'P-tuning: trained in bf16, not fp32')
  })
}

// ---- data-parallel ----

// Tolerances as test/96's for BERT, for this file's 4 steps at lr 1e-3 (the fixtures have no dropout, so N workers
// compute what 1 process does, the fp32 terms added in another order): AdamW moves a weight by at most about lr a
// step whatever its gradient, so 4e-3 is the worst case; the largest difference must be 40x less (measured: 2e-6),
// the mean over all weights 1e-8 (measured: 1e-10), while training moved the weights by more than 1e-4 (measured 2e-3).
const WEIGHT_TOL = 1e-4
const MEAN_TOL = 1e-8
const LOSS_TOL = 1e-5

interface WeightDiff { worst: number, mean: number, moved: number, names: boolean }
function weightDiff (aDir: string, bDir: string, baseDir: string): WeightDiff {
  const a = readSafetensors(path.join(aDir, 'model.safetensors'))
  const b = readSafetensors(path.join(bDir, 'model.safetensors'))
  const base = readSafetensors(path.join(baseDir, 'model.safetensors'))
  let worst = 0
  let sum = 0
  let count = 0
  let moved = 0
  for (const [name, x] of a) {
    const y = b.get(name)?.data as Float32Array | undefined
    if (y === undefined) return { worst: Infinity, mean: Infinity, moved: 0, names: false }
    const z = base.get(name)?.data as Float32Array | undefined
    const xd = x.data as Float32Array
    for (let i = 0; i < xd.length; i++) {
      const d = Math.abs(xd[i] - y[i])
      worst = Math.max(worst, d)
      sum += d
      if (z !== undefined) moved = Math.max(moved, Math.abs(xd[i] - z[i]))
    }
    count += xd.length
  }
  const names = [...a.keys()].sort().join() === [...b.keys()].sort().join()
  return { worst: Number.isNaN(sum) ? Infinity : worst, mean: sum / count, moved, names }
}

const dpOptions = (family: string, task: Task) => ({
  model: folder(family), train: [...task.data, ...task.data], dev: task.data, pattern: task.pattern, verbalizer: task.verbalizer,
  epochs: 2, batchSize: 4, lr: 1e-3, maskRate: 0, seed: 1, threads: 1, maxLength: 24
})

type Run = { history: Array<{ loss: number, dev?: number }>, steps: number, bestEpoch: number, model: string }
function sameRun (t: Test, one: Run, two: Run, base: string, tol: { weight?: number, mean: number, loss: number } = { weight: WEIGHT_TOL, mean: MEAN_TOL, loss: LOSS_TOL }): void {
  t.equal(two.steps, one.steps, `the same number of (global) steps (${one.steps})`)
  t.equal(two.history.length, one.history.length)
  two.history.forEach((h, i) => t.ok(Math.abs(h.loss - one.history[i].loss) < tol.loss, `epoch ${i + 1} loss ${h.loss} vs ${one.history[i].loss}`))
  t.same(two.history.map(h => h.dev), one.history.map(h => h.dev), 'the same dev accuracy every epoch')
  t.equal(two.bestEpoch, one.bestEpoch)
  const d = weightDiff(one.model, two.model, base)
  t.ok(d.names, 'the same tensors saved')
  t.ok(d.moved > 1e-4, `training moved the weights (by up to ${d.moved.toExponential(2)})`)
  if (tol.weight !== undefined) t.ok(d.worst < tol.weight, `largest weight difference ${d.worst.toExponential(2)} < ${tol.weight}`)
  t.ok(d.mean < tol.mean, `mean absolute weight difference ${d.mean.toExponential(2)} < ${tol.mean}`)
}

const available = native().distInfo().available
t.test('this build has c10d with Gloo', async t => {
  t.ok(available, native().distInfo().reason || 'available')
})

for (const family of ['roberta', 'albert', 'ernie'] as const) {
  const task = family === 'roberta' ? english : chinese
  t.test(`${family}: PET on 2 workers (nproc) ends with the losses and weights of 1 process`, { skip: !available }, async t => {
    const o = dpOptions(family, task)
    const one = await train({ ...o, out: path.join(dir, `${family}-dp1`) })
    const two = await train({ ...o, out: path.join(dir, `${family}-dp2`), nproc: 2, distTimeout: 60 })
    sameRun(t, one, two, folder(family))
  })
}

t.test('roberta: frozen P-tuning on 2 workers learns the prompt rows of 1 process', { skip: !available }, async t => {
  const o = { model: folder('roberta'), train: [...english.data, ...english.data], dev: english.data, verbalizer: english.verbalizer,
    promptTokens: 2, epochs: 2, batchSize: 4, lr: 0.05, maskRate: 0, seed: 1, threads: 1, maxLength: 24 }
  const one = await ptune({ ...o, out: path.join(dir, 'roberta-pt1') })
  const two = await ptune({ ...o, out: path.join(dir, 'roberta-pt2'), nproc: 2, distTimeout: 60 })
  t.equal(two.steps, one.steps)
  two.history.forEach((h, i) => t.ok(Math.abs(h.loss - one.history[i].loss) < LOSS_TOL, `epoch ${i + 1} loss ${h.loss} vs ${one.history[i].loss}`))
  const rows = (adapter: string | null | undefined) => readSafetensors(path.join(adapter!, 'adapter_model.safetensors')).get('prompt_embeddings')!.data as Float32Array
  const a = rows(one.adapter)
  const b = rows(two.adapter)
  t.equal(b.length, a.length)
  t.ok(a.length > 0 && a.every(Number.isFinite), `${a.length / 32} prompt rows of width 32`)
  // measured: 3e-7 (every prompt row gets a large gradient)
  const d = maxAbsDiff(a, b)
  t.ok(d < WEIGHT_TOL, `largest prompt-row difference ${d.toExponential(2)} < ${WEIGHT_TOL}`)
})

t.test('ernie: PET in bf16 on 2 workers ends with the losses and nearly the weights of 1 bf16 process', { skip: !available }, async t => {
  const o = { ...dpOptions('ernie', chinese), precision: 'bf16' as const }
  const one = await train({ ...o, out: path.join(dir, 'ernie-bf16-dp1') })
  const two = await train({ ...o, out: path.join(dir, 'ernie-bf16-dp2'), nproc: 2, distTimeout: 60 })
  // In bf16 the GEMMs take bf16 copies of the weights (make_operands in encoder_layer.cc, as under autocast), so each
  // worker's weight gradients come back through bf16 tensors, rounded (by up to 2^-8 of their size) before the
  // all-reduce sums them: the workers agree with 1 process less closely than in fp32. Measured: losses 2e-6 apart,
  // mean weight difference 2e-7 (fp32: 1e-10), the largest 9e-4 (not asserted: AdamW's lr-per-step bound at work on
  // weights with tiny gradients, as in fp32, only more often).
  sameRun(t, one, two, folder('ernie'), { mean: 1e-6, loss: 1e-4 })
  // and the workers did compute in bf16: their first-epoch loss is bf16's, not fp32's (measured 2e-4 apart)
  const fp32 = await train({ ...o, precision: 'fp32', out: path.join(dir, 'ernie-fp32-dp1') })
  const bf16Gap = Math.abs(one.history[0].loss - fp32.history[0].loss)
  const dpGap = Math.abs(two.history[0].loss - one.history[0].loss)
  t.ok(dpGap < bf16Gap / 10, `epoch 1 loss: 2 bf16 workers ${dpGap.toExponential(2)} from 1 bf16 process, which is ${bf16Gap.toExponential(2)} from fp32`)
})

// ---- XLM-R's workers through the CLI, with the environment torchrun sets for each ----

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)) })
  })
}

interface Ended { code: number | null, stdout: string, stderr: string }
/** bin/pet.js, alone or as one worker of `dist.world` with the environment torchrun sets */
function pet (args: string[], dist?: { rank: number, world: number, port: number }): Promise<Ended> {
  const { RANK: _r, WORLD_SIZE: _w, LOCAL_RANK: _l, ...alone } = process.env
  const env = dist === undefined
    ? alone
    : { ...alone, RANK: String(dist.rank), WORLD_SIZE: String(dist.world), LOCAL_RANK: String(dist.rank), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(dist.port) }
  const child = spawn(process.execPath, [path.join(repo, 'bin/pet.js'), ...args], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', d => { stdout += String(d) })
  child.stderr!.on('data', d => { stderr += String(d) })
  return new Promise(resolve => child.on('exit', code => resolve({ code, stdout, stderr })))
}

t.test('xlmr: PET on 2 workers started as torchrun would (RANK, WORLD_SIZE, MASTER_ADDR/PORT) ends as 1 process', { skip: !available }, async t => {
  const o = dpOptions('xlmr', english)
  const trainFile = path.join(dir, 'xlmr-train.jsonl')
  const devFile = path.join(dir, 'xlmr-dev.jsonl')
  fs.writeFileSync(trainFile, o.train.map(r => JSON.stringify(r)).join('\n') + '\n')
  fs.writeFileSync(devFile, o.dev.map(r => JSON.stringify(r)).join('\n') + '\n')
  const args = (out: string) => ['train', '--model', o.model, '--train', trainFile, '--dev', devFile, '--pattern', o.pattern,
    '--verbalizer', JSON.stringify(o.verbalizer), '--epochs', '2', '--batch-size', '4', '--lr', '1e-3', '--mask-rate', '0', '--seed', '1',
    '--threads', '1', '--max-length', '24', '--dist-timeout', '60', '--out', out, '--json']
  // both runs through the CLI, the same compiled code (dist/) on each side
  const ran = (what: string, r: Ended, out: string): Run | undefined => {
    t.equal(r.code, 0, `${what} exits 0 ${r.code === 0 ? '' : r.stderr.trim().split('\n').pop() ?? ''}`)
    if (r.code !== 0) return undefined
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!)
    const history = JSON.parse(fs.readFileSync(path.join(out, 'history.json'), 'utf8'))
    return { history, steps: summary.steps, bestEpoch: summary.best_epoch, model: path.join(out, 'best') }
  }
  const one = ran('1 process', await pet(args(path.join(dir, 'xlmr-cli1'))), path.join(dir, 'xlmr-cli1'))
  const port = await freePort()
  const out = path.join(dir, 'xlmr-cli2')
  const [r0, r1] = await Promise.all([pet(args(out), { rank: 0, world: 2, port }), pet(args(out), { rank: 1, world: 2, port })])
  const two = ran('rank 0', r0, out)
  t.equal(r1.code, 0, `rank 1 exits 0 ${r1.code === 0 ? '' : r1.stderr.trim().split('\n').pop() ?? ''}`)
  if (one !== undefined && two !== undefined) sameRun(t, one, two, folder('xlmr'))
})
