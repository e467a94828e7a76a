#!/usr/bin/env node
// Peak resident memory of frozen P-tuning vs full fine-tuning on the same batch (issue: frozen <= 0.6x full).
// Each mode runs in its own process: `node scripts/ptuning-memory.js [--steps 5] [--batch 16] [--len 128]`.
'use strict'
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const arg = (name, d) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : d }
const steps = arg('steps', 5); const batch = arg('batch', 16); const len = arg('len', 128)

if (process.argv[2] === '--child') {
  const mode = process.argv[3]
  const { MaskedLM } = require(path.join(__dirname, '../dist/lib/model.js'))
  MaskedLM.load().then(async m => {
    const rows = Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8])
    const spec = mode === 'full' ? { kind: 'all' } : mode === 'frozen-lstm' ? { kind: 'rows', rows, encoder: 'lstm' } : { kind: 'rows', rows }
    // As pet ptune sets them: frozen recomputes activations in backward, full keeps them.
    m.core.setTrainable(spec, { lr: 1e-4, recompute: mode !== 'full' })
    const ids = new Int32Array(batch * len)
    for (let b = 0; b < batch; b++) {
      ids.set([101, 1, 2, 3, 4, 103, 5, 6, 7, 8], b * len)
      for (let i = 10; i < len - 1; i++) ids[b * len + i] = 670 + ((b * 131 + i * 17) % 7000)
      ids[b * len + len - 1] = 102
    }
    const pos = new Int32Array(batch * 2)
    for (let b = 0; b < batch; b++) { pos[2 * b] = b; pos[2 * b + 1] = 5 }
    const base = process.resourceUsage().maxRSS
    const t0 = Date.now()
    for (let s = 0; s < steps; s++) {
      await m.core.trainStep({ inputIds: ids, batchSize: batch, seqLen: len }, { vocabPositions: pos, vocabTargets: new Int32Array(batch).fill(2523) })
    }
    console.log(JSON.stringify({ mode, maxRssMB: process.resourceUsage().maxRSS / 1024, loadedRssMB: base / 1024, stepsPerS: steps / ((Date.now() - t0) / 1000) }))
  })
} else {
  const results = {}
  for (const mode of ['full', 'frozen', 'frozen-lstm']) {
    const r = spawnSync(process.execPath, [__filename, '--child', mode, '--steps', String(steps), '--batch', String(batch), '--len', String(len)], { encoding: 'utf8' })
    if (r.status !== 0) { console.error(r.stderr); process.exit(1) }
    results[mode] = JSON.parse(r.stdout.trim().split('\n').pop())
    console.log(`${mode.padEnd(12)} peak RSS ${results[mode].maxRssMB.toFixed(0)} MB (after load ${results[mode].loadedRssMB.toFixed(0)} MB), ${results[mode].stepsPerS.toFixed(2)} steps/s`)
  }
  for (const m of ['frozen', 'frozen-lstm']) console.log(`${m} / full peak RSS: ${(results[m].maxRssMB / results.full.maxRssMB).toFixed(2)}`)
  console.log(JSON.stringify({ batch, len, steps, results }))
}
