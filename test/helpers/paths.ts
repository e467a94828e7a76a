import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

export const repo = path.resolve(__dirname, '../..')
export const shared = path.resolve(repo, '../shared')
export const fixtures = path.join(shared, 'fixtures/hf-reference')
export const tinyBert = path.join(fixtures, 'tiny-bert')
export const miniMlm = path.join(repo, 'models/zh-mini-mlm')
export const sentiment = path.join(shared, 'datasets/sentiment')

const made: string[] = []
process.on('exit', () => { for (const d of made) fs.rmSync(d, { recursive: true, force: true }) })

/** A fresh temporary directory removed at process exit. */
export function tmpDir (prefix = 'pet-mlm-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  made.push(d)
  return d
}

/** tiny-bert has no vocab.txt of its own: it uses bert-base-chinese's, the same as zh-mini-mlm's. */
export function tinyBertDir (): string {
  const d = tmpDir('tiny-bert-')
  for (const f of fs.readdirSync(tinyBert)) fs.copyFileSync(path.join(tinyBert, f), path.join(d, f))
  fs.copyFileSync(path.join(miniMlm, 'vocab.txt'), path.join(d, 'vocab.txt'))
  return d
}
