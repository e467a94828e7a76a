// Files are written to a temporary name beside the target and renamed into place: an interrupted write never
// leaves a half-written file where a good one was. The temporary name is this call's own (pid and random bytes), so
// concurrent writers of one file, in one process or several, never share it.
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

export function writeFileAtomic (file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`
  try {
    fs.writeFileSync(tmp, data)
    fs.renameSync(tmp, file)
  } catch (err) {
    fs.rmSync(tmp, { force: true })
    throw err
  }
}
