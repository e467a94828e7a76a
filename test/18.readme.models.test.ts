// The README's "Supported models" example runs as a user's ES module against the built package: its placeholder
// folders become the tiny RoBERTa and ALBERT fixtures, and its hub name is answered by an HF cache (offline) that
// holds the tiny XLM-R under models--FacebookAI--xlm-roberta-base, as Python's huggingface_hub lays it out.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { fixtures, repo, tmpDir } from './helpers/paths'

const families = path.join(fixtures, 'families')
const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8')
const after = readme.slice(readme.indexOf('## Supported models'))
const block = /```ts\n([\s\S]*?)```/.exec(after.slice(0, after.indexOf('\n## ', 4)))?.[1]

t.test("README's Supported models example: RoBERTa and ALBERT folders, XLM-R by hub name", async t => {
  if (!t.ok(block, 'the section has its ts example')) return
  const exportsMap = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).exports as Record<string, { default: string }>
  const root = pathToFileURL(path.join(repo, exportsMap['.'].default)).href

  const cache = tmpDir('pet-hub-cache-')
  const commit = 'a'.repeat(40)
  const model = path.join(cache, 'models--FacebookAI--xlm-roberta-base')
  const snapshot = path.join(model, 'snapshots', commit)
  fs.mkdirSync(snapshot, { recursive: true })
  for (const f of fs.readdirSync(path.join(families, 'tiny-xlmr'))) fs.copyFileSync(path.join(families, 'tiny-xlmr', f), path.join(snapshot, f))
  fs.mkdirSync(path.join(model, 'refs'))
  fs.writeFileSync(path.join(model, 'refs', 'main'), commit)

  const code = block!
    .replace("from 'pet-mlm'", `from '${root}'`)
    .replace("'path/to/roberta-base'", JSON.stringify(path.join(families, 'tiny-roberta')))
    .replace("'path/to/albert-chinese'", JSON.stringify(path.join(families, 'tiny-albert')))
  t.not(code, block, 'the placeholders were replaced')
  const cwd = tmpDir('pet-readme-models-')
  const file = path.join(cwd, 'example.mjs')
  fs.writeFileSync(file, code)
  const r = spawnSync(process.execPath, [file], {
    cwd, encoding: 'utf8', timeout: 300_000, env: { ...process.env, HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '1' }
  })
  if (!t.equal(r.status, 0, 'the example exits 0', { stderr: r.stderr.slice(-3000) })) return
  const labels = JSON.parse(r.stdout.trim().split('\n').pop()!) as string[][]
  t.same(labels.map(l => l.length), [2, 1, 2], 'a prediction per example of each call')
  t.ok(labels.flat().every(l => l === 'pos' || l === 'neg'), `every prediction is a label: ${JSON.stringify(labels)}`)
})
