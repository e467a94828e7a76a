#!/usr/bin/env node
// Data-parallel PET training on one machine: steps/s with 1 process x T threads against N processes x T/N threads
// (the same global batch, the same steps), and the time each step spends in its all-reduces. A script, not a test:
// the figures depend on the machine and on what else runs on it.
//   node scripts/bench-distributed.js [--nproc 2] [--threads 2] [--batch 32] [--steps 20] [--warmup 3] [--out FILE]
// Needs the built package (npm run build). Runs on the bundled zh-mini-mlm and the sentiment set in ../shared.
'use strict'
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : fallback
}
const nproc = Number(arg('nproc', 2))
const threads = Number(arg('threads', 2))
const batch = Number(arg('batch', 32))
const steps = Number(arg('steps', 20))
const warmup = Number(arg('warmup', 3))
const dataFile = arg('data', path.resolve(root, '../shared/datasets/sentiment/train.jsonl'))

// ---- one worker: the timed steps, on its share of every global batch ----
async function workerMain () {
  const lib = (p) => require(path.join(root, 'dist/lib', p))
  const { MaskedLM } = lib('model.js')
  const { Pattern } = lib('pet/pattern.js')
  const { Verbalizer } = lib('pet/verbalizer.js')
  const { petSteps } = lib('pet/train.js')
  const { loadExamples, fieldMap } = lib('data/examples.js')
  const { Rng } = lib('train/rng.js')
  const { joinGroup, shareOf } = lib('distributed/group.js')
  const group = await joinGroup(120)
  const model = await MaskedLM.load(lib('model.js').defaultModelDir, { threads: Number(process.env.BENCH_THREADS) })
  const pattern = new Pattern('[MASK]满意。{text}')
  const verbalizer = new Verbalizer({ positive: ['很'], negative: ['不'] }, model.tokenizer)
  const examples = loadExamples(dataFile, pattern.fields, fieldMap(pattern.fields, {}), 'train').slice(0, batch * (steps + warmup))
  const builder = petSteps(model, pattern, verbalizer, examples, [], {
    labelLoss: 'vocab', alpha: 0.9999, maskRate: 0.15, unlabeledRatio: 0, labelScores: { manyToOne: 'mean', multiToken: 'sum', score: 'logit' }, maxLength: 128
  })
  model.setTrainable({ kind: 'all' }, { lr: 1e-5, seed: 1, distributed: group !== undefined })
  const rank = group?.rank ?? 0
  const world = group?.worldSize ?? 1
  let t0 = 0
  let allreduceMs = 0
  for (let s = 0; s < steps + warmup; s++) {
    if (s === warmup) t0 = performance.now()
    const items = shareOf(builder.items.slice(s * batch, (s + 1) * batch), rank, world)
    const { batch: b, loss } = builder.buildStep(items, new Rng(1000 * s + rank))
    const r = group ? await model.trainShare(b, loss, false) : await model.trainStep(b, loss)
    if (s >= warmup) allreduceMs += r.allreduceMs
  }
  const seconds = (performance.now() - t0) / 1000
  model.dispose()
  process.stdout.write(JSON.stringify({ rank, stepsPerS: steps / seconds, allreduceMsPerStep: allreduceMs / steps }) + '\n')
  process.exit(0)
}

// ---- the launcher: each configuration in fresh processes ----
async function freePort () {
  return await new Promise(resolve => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) })
  })
}

function run (env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, '--worker', ...process.argv.slice(2)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', d => { out += d })
    child.on('exit', code => code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`worker exited with ${code}`)))
  })
}

async function main () {
  const single = await run({ BENCH_THREADS: String(threads), WORLD_SIZE: '' })
  const port = await freePort()
  const per = Math.max(1, Math.floor(threads / nproc))
  const ranks = await Promise.all(Array.from({ length: nproc }, (_, r) => run({
    BENCH_THREADS: String(per), RANK: String(r), WORLD_SIZE: String(nproc), LOCAL_RANK: String(r), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port)
  })))
  const result = {
    globalBatch: batch,
    steps,
    single: { processes: 1, threads, stepsPerS: single.stepsPerS },
    distributed: {
      processes: nproc,
      threadsEach: per,
      stepsPerS: Math.min(...ranks.map(r => r.stepsPerS)),
      // includes waiting for the slower worker at each all-reduce, not only the transfer
      allreduceMsPerStep: ranks.map(r => r.allreduceMsPerStep)
    }
  }
  console.log(`global batch ${batch}, ${steps} timed steps (zh-mini-mlm, PET with 15% extra masking)`)
  console.log(`  1 process  x ${threads} threads: ${single.stepsPerS.toFixed(2)} steps/s`)
  console.log(`  ${nproc} processes x ${per} thread${per > 1 ? 's' : ''}: ${result.distributed.stepsPerS.toFixed(2)} steps/s; ` +
    `all-reduce ${ranks.map(r => r.allreduceMsPerStep.toFixed(1)).join(' / ')} ms per step (rank 0 / 1 …)`)
  const out = arg('out')
  if (out) fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n')
}

if (process.argv.includes('--worker')) workerMain().catch(err => { console.error(err.message); process.exit(1) })
else main().catch(err => { console.error(err.message); process.exit(1) })
