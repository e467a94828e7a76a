// Checkpoint directories written atomically: the new one is saved beside the target and swapped in with
// renames, so a kill at any moment leaves a loadable checkpoint (the new one, or the previous one).
import * as fs from 'node:fs'
import * as path from 'node:path'
import { writeFileAtomic } from '../atomic-write'

/** Runs `write(tmpDir)` then swaps tmpDir into `dir`. */
export async function saveDirAtomic (dir: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`
  const old = `${dir}.old`
  // A save killed between its two renames left only the previous checkpoint, as .old: put it back first,
  // and drop temporary folders of killed saves (one process writes a run directory at a time).
  if (!fs.existsSync(dir) && fs.existsSync(old)) fs.renameSync(old, dir)
  const parent = path.dirname(path.resolve(dir))
  if (fs.existsSync(parent)) {
    for (const f of fs.readdirSync(parent)) {
      if (f.startsWith(`${path.basename(dir)}.tmp-`)) fs.rmSync(path.join(parent, f), { recursive: true, force: true })
    }
  }
  fs.mkdirSync(tmp, { recursive: true })
  try {
    await write(tmp)
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true })
    throw err
  }
  fs.rmSync(old, { recursive: true, force: true })
  if (fs.existsSync(dir)) fs.renameSync(dir, old)
  fs.renameSync(tmp, dir)
  fs.rmSync(old, { recursive: true, force: true })
}

/** The checkpoint to load: `dir`, or the previous one if a swap was interrupted; `marker` is a file every one has. */
export function resolveCheckpoint (dir: string, marker = 'config.json'): string | undefined {
  if (fs.existsSync(path.join(dir, marker))) return dir
  if (fs.existsSync(path.join(`${dir}.old`, marker))) return `${dir}.old`
  return undefined
}

/** Writes `value` as indented JSON, atomically (a reader never sees half a file). */
export function writeJson (file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n')
}

/** A JSON file's value; undefined where the file does not exist. */
export function readJson<T> (file: string): T | undefined {
  if (!fs.existsSync(file)) return undefined
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T
}
