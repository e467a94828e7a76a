// Checkpoints are swapped in atomically: killing a save at any moment leaves a loadable checkpoint.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { MaskedLM } from '../lib/model'
import { resolveCheckpoint, saveDirAtomic } from '../lib/train/checkpoint'
import { miniMlm, repo, tmpDir } from './helpers/paths'
import { maxAbsDiff } from './helpers/tensors'

t.test('a save killed part-way leaves the previous checkpoint loadable', async t => {
  const parent = tmpDir()
  const dir = path.join(parent, 'best')
  const old = `${dir}.old`
  const tmpOf = (pid: number): string => `${dir}.tmp-${pid}`
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  await saveDirAtomic(dir, tmp => model.save(tmp))
  const batch = { inputIds: Int32Array.from([101, 103, 4007, 2692, 102]), batchSize: 1, seqLen: 5 }
  const expected = await model.logitsAt(batch, Int32Array.from([0, 1]))

  // A child saves the same checkpoint over and over and reports where it is on stdout: "write N" once save
  // N's temporary folder exists and its files are being written, "saved N" when save N is done. In the
  // modes 'between-renames' and 'after-renames' it also holds still (without changing what saveDirAtomic
  // does or in what order) right after the rename dir -> dir.old, or right after the rename tmp -> dir,
  // and says so: a kill there lands in the swap window for sure, where a timed kill would need luck.
  const childSrc = `
    const fs = require('node:fs')
    const dir = ${JSON.stringify(dir)}
    const mode = process.env.PET_TEST_SAVE_MODE
    const say = s => fs.writeSync(1, s + '\\n')
    const holdStill = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000)
    const rename = fs.renameSync
    fs.renameSync = (from, to) => {
      rename(from, to)
      if (mode === 'between-renames' && from === dir && to === dir + '.old') { say('between-renames'); holdStill() }
      if (mode === 'after-renames' && from.startsWith(dir + '.tmp-') && to === dir) { say('after-renames'); holdStill() }
    }
    const { MaskedLM } = require(${JSON.stringify(path.join(repo, 'dist/lib/model.js'))})
    const { saveDirAtomic } = require(${JSON.stringify(path.join(repo, 'dist/lib/train/checkpoint.js'))})
    MaskedLM.load(${JSON.stringify(miniMlm)}).then(async m => {
      for (let n = 1; ; n++) {
        await saveDirAtomic(dir, tmp => { say('write ' + n); return m.save(tmp) })
        say('saved ' + n)
      }
    })`
  const running = new Set<ChildProcess>()
  t.teardown(() => { for (const p of running) p.kill('SIGKILL') })
  const startChild = (mode: 'loop' | 'between-renames' | 'after-renames') => {
    const p = spawn(process.execPath, ['-e', childSrc], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PET_TEST_SAVE_MODE: mode }
    })
    running.add(p)
    const exited = new Promise<void>(resolve => p.on('exit', () => { running.delete(p); resolve() }))
    let out = ''
    let err = ''
    let waiting: { line: string, resolve: (seen: boolean) => void } | undefined
    p.stderr!.on('data', d => { err += d })
    p.stdout!.on('data', d => {
      out += d
      if (waiting && out.split('\n').includes(waiting.line)) { waiting.resolve(true); waiting = undefined }
    })
    return {
      pid: p.pid!,
      stderr: () => err,
      /** Resolves true once the child printed `line`; false if it exited or took more than 30 s. */
      waitFor: (line: string) => new Promise<boolean>(resolve => {
        if (out.split('\n').includes(line)) return resolve(true)
        waiting = { line, resolve }
        const timer = setTimeout(() => resolve(false), 30000)
        void exited.then(() => { clearTimeout(timer); resolve(out.split('\n').includes(line)) })
      }),
      kill: async () => { p.kill('SIGKILL'); await exited }
    }
  }
  const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
  const leftovers = () => fs.readdirSync(parent).sort()
  const loadsRight = async (what: string) => {
    const found = resolveCheckpoint(dir)
    t.ok(found, `${what}: a checkpoint is there (${found && path.basename(found)})`)
    if (!found) return
    const m = await MaskedLM.load(found)
    t.equal(maxAbsDiff(await m.logitsAt(batch, Int32Array.from([0, 1])), expected), 0, `${what}: it loads with the right weights`)
    m.dispose()
    return found
  }

  // 1. Kills timed from the child's own report: a few ms after save N (N = 2..4, so the checkpoint has
  // already been replaced by the child) began writing. A kill that landed inside a save leaves that save's
  // temporary folder (killed before the tmp -> dir rename) or dir.old (killed in the swap or before the old
  // checkpoint was removed); a kill between two saves leaves neither. Kill until at least 3 kills (and at
  // least 1 with a temporary folder left) demonstrably interrupted a save: at least 5 kills, at most 12.
  const delays = [0, 2, 5, 8, 11, 1, 3, 6, 9, 12, 4, 7]
  let kills = 0
  let midSave = 0
  let withTmp = 0
  for (const delay of delays) {
    if (kills >= 5 && midSave >= 3 && withTmp >= 1) break
    const n = 2 + kills % 3
    const c = startChild('loop')
    if (!await c.waitFor(`write ${n}`)) {
      await c.kill()
      t.fail(`the saving child never began save ${n}`, { stderr: c.stderr() })
      return
    }
    await sleep(delay)
    await c.kill()
    kills++
    const left = leftovers()
    const tmpLeft = fs.existsSync(tmpOf(c.pid))
    const oldLeft = fs.existsSync(old)
    if (tmpLeft || oldLeft) midSave++
    if (tmpLeft) withTmp++
    t.same(left.filter(f => f.startsWith('best.tmp-') && f !== path.basename(tmpOf(c.pid))), [],
      `kill ${kills}: temporary folders of earlier killed saves were removed by the next save`)
    await loadsRight(`kill ${kills}, ${delay} ms into save ${n} (left: ${left.join(' ')})`)
  }
  t.ok(midSave >= 3, `at least 3 of the ${kills} timed kills landed inside a save (${midSave} did)`)
  t.ok(withTmp >= 1, `at least 1 timed kill left a half-done save's temporary folder (${withTmp} did)`)

  // 2. A kill between the two renames: the checkpoint is only at dir.old; the new one is complete in tmp.
  {
    const c = startChild('between-renames')
    const held = await c.waitFor('between-renames')
    await c.kill()
    t.ok(held, 'the child reached the point between its two renames', { stderr: c.stderr() })
    t.notOk(fs.existsSync(dir), 'killed between the renames: dir is gone')
    t.ok(fs.existsSync(path.join(old, 'config.json')), 'the previous checkpoint is at dir.old')
    t.ok(fs.existsSync(path.join(tmpOf(c.pid), 'config.json')), 'and the new one is still in the temporary folder')
    t.equal(await loadsRight('killed between the renames'), old, 'resolveCheckpoint falls back to dir.old')
    // 3. The next save puts dir.old back and drops the dead save's folder; kill it right after its swap,
    // before it removed dir.old: both are there, and dir (the new one) is the one to load.
    const d = startChild('after-renames')
    const held2 = await d.waitFor('after-renames')
    await d.kill()
    t.ok(held2, 'the next child reached the point after its two renames', { stderr: d.stderr() })
    t.same(leftovers(), ['best', 'best.old'], 'killed after the swap: dir and dir.old, the dead save\'s folder removed')
    t.equal(await loadsRight('killed after the swap'), dir, 'resolveCheckpoint takes the new dir')
  }

  // 4. A save that runs to the end cleans up whatever the killed ones left.
  await saveDirAtomic(dir, tmp => model.save(tmp))
  t.same(leftovers(), ['best'], 'a completed save leaves only dir')
  t.equal(await loadsRight('after a completed save'), dir, 'which is the checkpoint resolved')
})
