// Checkpoints are swapped in atomically: killing a save at any moment leaves a loadable checkpoint.
import t from 'tap'
import { spawn } from 'node:child_process'
import * as path from 'node:path'
import { MaskedLM } from '../lib/model'
import { resolveCheckpoint, saveDirAtomic } from '../lib/train/checkpoint'
import { miniMlm, repo, tmpDir } from './helpers/paths'
import { maxAbsDiff } from './helpers/safetensors'

t.test('a save killed part-way leaves the previous checkpoint loadable', async t => {
  const dir = path.join(tmpDir(), 'best')
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  await saveDirAtomic(dir, tmp => model.save(tmp))
  const batch = { inputIds: Int32Array.from([101, 103, 4007, 2692, 102]), batchSize: 1, seqLen: 5 }
  const expected = await model.logitsAt(batch, Int32Array.from([0, 1]))
  // A child saves the same checkpoint over and over; it is killed at different moments.
  const child = `
    const { MaskedLM } = require(${JSON.stringify(path.join(repo, 'dist/lib/model.js'))})
    const { saveDirAtomic } = require(${JSON.stringify(path.join(repo, 'dist/lib/train/checkpoint.js'))})
    MaskedLM.load(${JSON.stringify(miniMlm)}).then(async m => { for (;;) await saveDirAtomic(${JSON.stringify(dir)}, tmp => m.save(tmp)) })`
  for (const delay of [900, 1300, 1700, 2100, 2500]) {
    const p = spawn(process.execPath, ['-e', child], { stdio: 'ignore' })
    await new Promise(resolve => setTimeout(resolve, delay))
    p.kill('SIGKILL')
    await new Promise(resolve => p.on('exit', resolve))
    const found = resolveCheckpoint(dir)
    t.ok(found, `after a kill at ${delay} ms a checkpoint is there (${found && path.basename(found)})`)
    const m = await MaskedLM.load(found!)
    t.equal(maxAbsDiff(await m.logitsAt(batch, Int32Array.from([0, 1])), expected), 0, 'and it loads with the right weights')
    m.dispose()
  }
})
