// Every example of the README and docs/ runs: the library's code blocks (README's Library section, then
// docs/library.md) from the package folder (as a user's script would, with 'pet-mlm' resolved to this checkout), the
// README's main-job command line and the data-parallel commands of docs/distributed.md.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { zeroShot } from '../lib/workflows/zero-shot'
import { isAccuracyOver } from './helpers/accuracy'
import { repo, tmpDir } from './helpers/paths'

const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8')
const docsDir = path.join(repo, 'docs')
const readDoc = (name: string) => fs.readFileSync(path.join(docsDir, name), 'utf8')
const jsBlocks = (text: string) => [...text.matchAll(/```js\n([\s\S]*?)```/g)].map(m => m[1])

/** The section under the heading `title` (any level) up to the next heading of the same or a higher level, headings
 * inside code blocks not counted; '' where there is no such heading. */
function section (text: string, title: string): string {
  const out: string[] = []
  let level = 0
  let inCode = false
  for (const line of text.split('\n')) {
    const heading = inCode ? null : /^(#+) (.*)$/.exec(line)
    if (line.startsWith('```')) inCode = !inCode
    if (heading && level && heading[1].length <= level) break
    if (heading && !level && heading[2] === title) level = heading[1].length
    if (level) out.push(line)
  }
  return out.join('\n')
}

// the README's Library section has the first example, docs/library.md the other three, in this order
const readmeBlocks = jsBlocks(section(readme, 'Library'))
const libraryBlocks = jsBlocks(readDoc('library.md'))
const blocks = [...readmeBlocks, ...libraryBlocks]
// 'pet-mlm' and 'pet-mlm/advanced' resolve as package.json's "exports" say, to the built files in dist/
const exportsMap = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).exports as Record<string, { default: string }>
const entry = (specifier: string) => pathToFileURL(path.join(repo, exportsMap[specifier.replace(/^pet-mlm/, '.')].default)).href

/** Runs one block as an ES module in a folder that has the package's data/ (runs/ is written there). */
function runBlock (code: string): { status: number | null, stdout: string, stderr: string, last: any } {
  const cwd = tmpDir('pet-readme-')
  fs.symlinkSync(path.join(repo, 'data'), path.join(cwd, 'data'))
  const file = path.join(cwd, 'example.mjs')
  fs.writeFileSync(file, code.replace(/from '(pet-mlm(?:\/advanced)?)'/g, (_, specifier: string) => `from '${entry(specifier)}'`))
  const r = spawnSync(process.execPath, [file], { cwd, encoding: 'utf8', timeout: 600_000 })
  let last: any
  try { last = JSON.parse(r.stdout.trim().split('\n').pop()!) } catch {}
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, last }
}

t.test('the README has its four library examples', async t => {
  t.equal(blocks.length, 4)
  t.equal(readmeBlocks.length, 1, "one in the README's Library section")
  t.equal(libraryBlocks.length, 3, 'three in docs/library.md')
})

t.test('every js example in README and docs is run', async t => {
  const docs = fs.readdirSync(docsDir).filter(f => f.endsWith('.md')).sort()
  const all = [readme, ...docs.map(readDoc)].flatMap(jsBlocks)
  // the library tests below run blocks[0..3]; an example added anywhere without a test here fails this count
  t.equal(all.length, blocks.length, `js blocks in README.md and docs/*.md (${docs.join(', ')}) = the examples run`)
  t.equal(blocks.length, 4)
})

t.test('README: few-shot PET on records, then Classifier.load and classify', async t => {
  const r = runBlock(blocks[0])
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /epoch 1: loss \d+\.\d{3}, dev 0\.\d+\nepoch 2: loss/, 'the epoch events')
  t.ok(isAccuracyOver(r.last?.devAccuracy, 200), `dev accuracy k/200 (${r.last?.devAccuracy})`)
  t.ok(r.last?.labels.every((l: string) => l === 'positive' || l === 'negative'), `labels ${r.last?.labels}`)
  t.match(r.stdout, /^(positive|negative) \{ positive: 0\.\d+, negative: 0\.\d+ \}$/m, 'a label and its probabilities')
})

t.test('docs/library.md: an aborted run rejects with EABORT and resume finishes it', async t => {
  const r = runBlock(blocks[1])
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /^EABORT training \(.*epoch 1, step 4 of 4; resume continues it\) was aborted$/m)
  t.equal(r.last?.steps, 8, 'the resumed run ends after all 2 x 4 steps')
  t.ok(isAccuracyOver(r.last?.devAccuracy, 100), `dev accuracy k/100 (${r.last?.devAccuracy})`)
})

t.test('docs/library.md: zeroShot, finetune, ptune, ensemble, distill, ipet, pretrain, predict, tokenize', async t => {
  const r = runBlock(blocks[2])
  t.equal(r.status, 0, r.stderr)
  // every accuracy is over the example's 80 dev records
  for (const k of ['zs', 'ft', 'pt', 'en', 'ds', 'ip', 'pr']) t.ok(isAccuracyOver(r.last?.[k], 80), `${k}: an accuracy k/80 (${r.last?.[k]})`)
  t.equal(r.last?.pr, r.last?.pt, 'predict with the saved adapter on its base model reproduces ptune\'s dev accuracy')
  // zero-shot has no randomness: the example's accuracy is the library's own on the same 80 records (valid 16..95)
  const valid = fs.readFileSync(path.join(repo, 'data/sentiment/valid.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l))
  const zs = await zeroShot({ data: valid.slice(16, 96), pattern: '[MASK]满意。{text}', verbalizer: { positive: ['很'], negative: ['不'] } })
  t.equal(r.last?.zs, zs.accuracy, `zeroShot's accuracy on those records, in this process (${zs.correct}/80)`)
  // zh-mini-mlm's MLM loss is about 2.9 on its corpus: well below a uniform guess's ln(V)
  t.ok(r.last?.pre > 0 && r.last.pre < Math.log(21128), `an MLM loss below ln(21128) (${r.last?.pre})`)
  t.equal(r.last?.ids?.[1], 103, 'tokenize gives [MASK] its id')
  t.match(r.stdout, /^ptuning (positive|negative)$/m, 'the adapter loads as a classifier')
})

t.test('docs/library.md: MaskedLM.load with each layer kernel gives the same [MASK] logits', async t => {
  const r = runBlock(blocks[3])
  t.equal(r.status, 0, r.stderr)
  t.equal(r.last?.vocab, 21128, 'full-vocabulary logits at the [MASK]')
  for (const k of r.last?.kernels ?? []) t.match(r.stdout, new RegExp(`^${k} ${k}$`, 'm'), `info.kernels says ${k}`)
  t.ok(r.last?.kernels.includes('aten'), 'ATen\'s ops are always there')
  t.ok(Number.isFinite(r.last?.diff) && r.last.diff <= 1e-4, `the kernels agree (max abs difference ${r.last?.diff})`)
})

t.test('README: the main job', async t => {
  const cmd = readme.match(/```sh\n(npx pet zero-shot[\s\S]*?)\n# accuracy: (\S+) \((\d+)\/(\d+)\)/)
  t.ok(cmd, 'the main-job command and its printed accuracy are in the README')
  const args = cmd![1].replace(/\\\n\s*/g, ' ').match(/'[^']*'|\S+/g)!.slice(2).map(a => a.replace(/^'|'$/g, ''))
  const r = spawnSync(process.execPath, [path.join(repo, 'bin/pet.js'), ...args], { cwd: repo, encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, new RegExp(`^accuracy: ${cmd![2].replace('.', '\\.')} \\(${cmd![3]}/${cmd![4]}\\)`, 'm'), 'prints what the README says')
})

t.test('docs/distributed.md: data-parallel training, --nproc 2 and the environment variables, give the same run', async t => {
  const dist = section(readDoc('distributed.md'), 'Data-parallel training')
  const sh = [...dist.matchAll(/```sh\n([\s\S]*?)```/g)].map(m => m[1])
  t.equal(sh.length, 2, 'two examples: --nproc, and the variables')
  const cwd = tmpDir('pet-readme-dist-')
  fs.symlinkSync(path.join(repo, 'data'), path.join(cwd, 'data'))
  const port = await new Promise<number>(resolve => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)) })
  })
  const script = sh.join('\n').replace(/npx pet /g, `"${process.execPath}" "${path.join(repo, 'bin/pet.js')}" `).replace(/MASTER_PORT=29500/g, `MASTER_PORT=${port}`)
  const r = spawnSync('bash', ['-e', '-c', script], { cwd, encoding: 'utf8', timeout: 600_000 })
  t.equal(r.status, 0, `both examples run: ${r.stderr}`)
  const history = (run: string) => JSON.parse(fs.readFileSync(path.join(cwd, 'runs', run, 'history.json'), 'utf8')) as Array<{ loss: number, dev: number }>
  const a = history('pet-2')
  const b = history('pet-env')
  t.equal(a.length, 2, 'two epochs')
  t.ok(a.every(h => Number.isFinite(h.loss) && isAccuracyOver(h.dev, 200)), 'losses, dev accuracies k/200')
  // the same 2 ranks, seeds and threads: the same steps whichever way the workers were started
  t.same(b.map(h => [h.loss, h.dev]), a.map(h => [h.loss, h.dev]), 'the same losses and dev accuracies')
})
