// Packaging: "npm install, then call from Node" works. `npm pack` of this repo, installed with production
// dependencies only into a fresh project outside the repo (the package's install script compiles the native addon
// there, against the system LibTorch, with Node-API headers from node-api-headers: nothing downloaded for Node),
// then used from a plain CommonJS script and from a strict, type-checked ESM TypeScript file: train a PET model on
// 32 examples for one epoch, load it with Classifier.load, classify a few texts.
// The figures (tarball size, install and compile time) go to the tap output and to figures.json in the temp dir
// (and to $PET_MLM_PACKAGING_FIGURES when that is set).
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { isAccuracyOver } from './helpers/accuracy'
import { repo, tmpDir } from './helpers/paths'

t.setTimeout(40 * 60 * 1000) // the whole file: a fresh machine fetches the dependencies and compiles the addon

const work = tmpDir('pet-mlm-packaging-')
const packDir = path.join(work, 'pack')
const project = path.join(work, 'project')
const installed = path.join(project, 'node_modules', 'pet-mlm')
const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc')
const figures: Record<string, unknown> = { node: process.version, platform: `${process.platform}-${process.arch}` }
const LABELS = ['negative', 'positive']
const TEXTS = ['这本书写得很好，孩子非常喜欢。', '质量太差了，不会再买。', '还行吧。']

const children = new Set<ChildProcess>()
process.on('exit', () => { for (const c of children) c.kill('SIGTERM') })

/**
 * The environment for the fresh project: nothing from the test harness or the enclosing `npm test` (tap's
 * NODE_OPTIONS loaders, npm_package_*, npm_config_local_prefix, the repo's node_modules/.bin on PATH), but the
 * npm settings that reach the registry. PET_MLM_BUILD_TESTS (CI's `npm ci`) would also compile the C++ test
 * executables; PET_MLM_NO_DOWNLOAD: without LibTorch, fail instead of downloading one.
 */
function freshEnv (): NodeJS.ProcessEnv {
  const keep = new Set(['cache', 'cafile', 'ca', 'registry', 'proxy', 'https_proxy', 'http_proxy', 'noproxy', 'strict_ssl',
    'userconfig', 'globalconfig', 'offline', 'prefer_offline', 'prefer_online', 'fetch_retries', 'fetch_timeout'].map(k => `npm_config_${k}`))
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|TAP|_TAPJS|NODE_OPTIONS$|NODE_PATH$|INIT_CWD$|NODE$|TS_NODE|TSIMP)/i.test(k) && !keep.has(k.toLowerCase())) continue
    if (k === 'PET_MLM_BUILD_TESTS') continue
    env[k] = v
  }
  const inRepo = (p: string) => path.resolve(p) === repo || path.resolve(p).startsWith(repo + path.sep)
  env.PATH = (process.env.PATH ?? '').split(path.delimiter).filter(p => p !== '' && !inRepo(p)).join(path.delimiter)
  env.PET_MLM_NO_DOWNLOAD = '1'
  return env
}

interface Run { code: number | null, signal: string | null, out: string, stdout: string, seconds: number, lines: Array<{ at: number, line: string }> }

/** Runs a command, capturing stdout and stderr together, each line with the time it arrived (ms since the start). */
function run (cmd: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    const child = spawn(cmd, args, { cwd, env: freshEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    let out = ''
    let stdout = ''
    let partial = ''
    const lines: Run['lines'] = []
    const take = (chunk: Buffer) => {
      const s = chunk.toString('utf8')
      out += s
      const parts = (partial + s).split('\n')
      partial = parts.pop()!
      for (const line of parts) lines.push({ at: Date.now() - t0, line })
    }
    child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8'); take(chunk) })
    child.stderr!.on('data', take)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      children.delete(child)
      if (partial) lines.push({ at: Date.now() - t0, line: partial })
      resolve({ code, signal, out, stdout, seconds: (Date.now() - t0) / 1000, lines })
    })
  })
}

/** The output of a failed command, for the failure's diagnostics (its end: compiler errors come last). */
const tail = (r: Run, n = 12000) => `${r.code === null ? `killed by ${r.signal}` : `exit ${r.code}`}\n${r.out.slice(-n)}`

const mb = (bytes: number) => Math.round(bytes / 1e4) / 100

function dirSize (dir: string): number {
  let total = 0
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) total += dirSize(p)
    else if (e.isFile()) total += fs.statSync(p).size
  }
  return total
}

let tarball: string | undefined
let installedOk = false

t.test('npm pack: the tarball holds what an install needs (the built library, the native sources, the install scripts, the model and the data), and nothing else', async t => {
  t.setTimeout(10 * 60 * 1000)
  fs.mkdirSync(packDir, { recursive: true })
  // `prepare` (build:ts) runs, as it does before a publish
  const r = await run('npm', ['pack', '--json', '--pack-destination', packDir], repo)
  if (!t.equal(r.code, 0, 'npm pack exits 0', { output: tail(r) })) return
  figures.packSeconds = r.seconds
  // the JSON is on stdout; prepare's output and npm's warnings go to stderr
  const json = r.stdout.slice(r.stdout.indexOf('['), r.stdout.lastIndexOf(']') + 1)
  const info = (JSON.parse(json) as Array<{ filename: string, size: number, unpackedSize: number, entryCount: number, files: Array<{ path: string, size: number }> }>)[0]
  const file = path.join(packDir, info.filename)
  t.ok(fs.existsSync(file), `the tarball ${info.filename} is written`)
  const size = fs.statSync(file).size
  t.equal(size, info.size, 'its size is the one npm reports')
  Object.assign(figures, { tarball: info.filename, tarballBytes: size, tarballMB: mb(size), unpackedBytes: info.unpackedSize, unpackedMB: mb(info.unpackedSize), files: info.files.length })
  t.comment(`tarball ${info.filename}: ${size} bytes (${mb(size)} MB), unpacked ${info.unpackedSize} bytes (${mb(info.unpackedSize)} MB), ${info.files.length} files; npm pack ${r.seconds.toFixed(1)} s`)

  const paths = info.files.map(f => f.path)
  for (const needed of ['package.json', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/advanced.js', 'dist/lib/advanced.d.ts',
    'dist/bindings.d.ts', 'dist/lib/cli/index.js', 'dist/lib/bench/index.js', 'bin/pet.js',
    'scripts/build-native.js', 'scripts/find-libtorch.js', 'scripts/download-libtorch.js', 'CMakeLists.txt', 'native/addon/addon.cc',
    'native/third_party/nlohmann/json.hpp', 'models/zh-mini-mlm/model.safetensors',
    'models/zh-mini-mlm/vocab.txt', 'models/zh-mini-mlm/config.json', 'data/sentiment/valid.jsonl']) {
    t.ok(paths.includes(needed), `ships ${needed}`)
  }
  // native/core flat or grouped by concern (native/core/model/bert_model.cc)
  t.ok(paths.some(p => /^native\/core\/(\w+\/)?bert_model\.cc$/.test(p)), 'ships the core\'s sources (bert_model.cc under native/core)')
  // What an install uses and nothing more: the compiled library (`pet bench` is a command, so dist/lib/bench ships),
  // the sources the install hook compiles and the hook's scripts. Not the TypeScript sources, the C++ tests and
  // benchmarks (native/tests), the experiment scripts (reproduce.js, label-bench.js, gpu-*, …) or the docs' generator.
  const shipped = /^(package\.json|README\.md|LICENSE|CMakeLists\.txt|bin\/pet\.js|scripts\/(build-native|find-libtorch|download-libtorch)\.js|dist\/bindings\.d\.ts|dist\/lib\/.+\.(js|d\.ts|js\.map)|native\/(addon|core|third_party)\/.+|models\/zh-mini-mlm\/[^/]+|data\/.+\.(jsonl|md))$/
  t.same(paths.filter(p => !shipped.test(p)), [], 'nothing outside what an install needs (no lib/*.ts, tests, experiments, build output, runs or logs)')
  const junk = paths.filter(p => /^(lib|test|native\/tests|scripts\/(bench|gpu)|build|build-gpu|runs|bench-results|gpu|gpu-results|\.tap|\.ci|\.libtorch|node_modules|prebuilds)\//.test(p) ||
    /\.node$|\.tsbuildinfo$|\.log$|\.py$|\.sh$/.test(p) || /^scripts\/(reproduce|label-bench|label-lengths|ptuning-memory|bench|gpu-|api-docs)/.test(p))
  t.same(junk, [], 'in particular no bench or experiment script, C++ test, TypeScript source, build output, runs or logs')
  // what is in the tree's dist/ ships: compiled files whose source is gone from lib/ (an old build) are worth knowing about
  const orphans = paths.filter(p => p.startsWith('dist/lib/') && p.endsWith('.js') && !fs.existsSync(path.join(repo, p.slice(5, -3) + '.ts')))
  if (orphans.length) t.comment(`note: dist/ holds compiled files without a source in lib/ (a stale build; they ship): ${orphans.join(', ')}`)
  figures.staleDistFiles = orphans
  const big = info.files.filter(f => f.size > 1e6).map(f => `${f.path} ${mb(f.size)} MB`)
  t.comment(`files over 1 MB: ${big.join(', ')}`)
  t.ok(size < 45e6, `the tarball stays under 45 MB (the bundled model is ~35 MB): ${mb(size)} MB`)
  tarball = file
})

t.test('a fresh project installs the tarball (production deps only) and compiles its own addon', async t => {
  t.setTimeout(30 * 60 * 1000)
  if (!tarball) { t.fail('no tarball (npm pack failed)'); return }
  fs.mkdirSync(project, { recursive: true })
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'pet-mlm-consumer', version: '1.0.0', private: true }, null, 2) + '\n')
  // --foreground-scripts: the install script's output (and so when the compile starts and ends) comes to us
  const r = await run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--foreground-scripts', tarball], project)
  fs.writeFileSync(path.join(work, 'install.log'), r.out)
  if (!t.equal(r.code, 0, `npm install exits 0 (${r.seconds.toFixed(1)} s)`, { output: tail(r) })) return
  figures.installSeconds = r.seconds
  const at = (re: RegExp) => r.lines.find(l => re.test(l.line))?.at
  const started = at(/^pet-mlm: using LibTorch from/)
  const built = at(/^pet-mlm: native addon built/)
  if (started !== undefined && built !== undefined) figures.compileSeconds = (built - started) / 1000
  t.comment(`npm install ${r.seconds.toFixed(1)} s in all` +
    (figures.compileSeconds !== undefined ? `, of which the native compile (cmake-js) ${(figures.compileSeconds as number).toFixed(1)} s` : ''))

  t.match(r.out, /pet-mlm: using LibTorch from/, 'the install script looked for LibTorch', { output: tail(r) })
  t.match(r.out, /pet-mlm: native addon built/, 'the install script compiled the addon', { output: tail(r) })
  t.notMatch(r.out, /native addon already built/, 'nothing prebuilt was reused')
  t.match(r.out, /node-api-headers[\\/]include/, 'cmake-js took the Node-API headers from node-api-headers', { output: tail(r) })
  t.notMatch(r.out, /Downloading distribution files/, 'cmake-js downloaded no Node headers')
  t.notMatch(r.out, /core_test|torch_bin_test/, 'the C++ test executables were not built (PET_MLM_BUILD_TESTS is CI\'s, not a user\'s)')
  const addon = path.join(installed, 'build', 'Release', 'pet_mlm.node')
  t.ok(fs.existsSync(addon), 'node_modules/pet-mlm/build/Release/pet_mlm.node exists')
  if (fs.existsSync(addon)) figures.addonBytes = fs.statSync(addon).size
  for (const dep of ['cmake-js', 'node-addon-api', 'node-gyp-build', 'cli-progress', 'echarts', 'node-api-headers']) {
    t.ok(fs.existsSync(path.join(project, 'node_modules', dep, 'package.json')), `production dependency ${dep} is installed`)
  }
  for (const dev of ['tap', 'typescript', '@types/node', '@huggingface/transformers']) {
    t.notOk(fs.existsSync(path.join(project, 'node_modules', dev)), `dev dependency ${dev} is not`)
  }
  const nm = dirSize(path.join(project, 'node_modules'))
  const pkg = dirSize(installed)
  Object.assign(figures, { nodeModulesMB: mb(nm), installedPackageMB: mb(pkg) })
  t.comment(`the fresh project's node_modules: ${mb(nm)} MB (pet-mlm with its build/: ${mb(pkg)} MB)`)
  installedOk = fs.existsSync(addon)
})

/** A subtest's `t` (tap's last test() overload takes just the callback). */
type Sub = Parameters<Parameters<typeof t.test>[0]>[0]

interface ConsumerResult {
  resolved: string
  addons: string[]
  labeled: number
  model: string
  out: string
  devAccuracy: number | null
  bestEpoch: number
  epochs: number
  report: string
  labels: string[]
  kind: string
  predictions: Array<{ label: string, probs: Record<string, number>, scores: Record<string, number> }>
  seconds: number
  advanced: { maskedLM: string, atRoot: boolean }
}

/** What both consumers print on their last line, checked the same way; the result, for comparing the two. */
function checkConsumer (t: Sub, r: Run, out: string, what: string): ConsumerResult | undefined {
  const line = r.lines.map(l => l.line).reverse().find(l => l.startsWith('RESULT '))
  if (!t.ok(line, `${what} prints its RESULT line`, { output: tail(r) })) return undefined
  const o = JSON.parse(line!.slice('RESULT '.length)) as ConsumerResult
  t.ok(o.resolved.startsWith(installed + path.sep), `${what}: 'pet-mlm' resolves to the installed package (${o.resolved})`)
  t.equal(o.advanced?.maskedLM, 'function', `${what}: 'pet-mlm/advanced' has MaskedLM.load`)
  t.equal(o.advanced?.atRoot, false, `${what}: and the root does not (the building blocks are only in 'pet-mlm/advanced')`)
  if (fs.existsSync('/proc/self/maps')) {
    t.ok(o.addons.length > 0, `${what}: the addon is mapped into the process`)
    t.same(o.addons.filter(a => !a.startsWith(installed + path.sep)), [], `${what}: the only pet_mlm.node loaded is the fresh project's own (${o.addons.join(', ')})`)
  }
  t.equal(o.labeled, 32, `${what}: trained on 32 examples`)
  t.equal(o.epochs, 1, `${what}: for one epoch`)
  t.equal(o.bestEpoch, 1, `${what}: the kept epoch is epoch 1`)
  t.equal(path.resolve(o.out), path.resolve(out), `${what}: the run went to the out it was given`)
  t.equal(path.resolve(o.model), path.join(path.resolve(out), 'best'), `${what}: the model is OUT/best`)
  t.ok(fs.existsSync(path.join(o.model, 'pet.json')), `${what}: OUT/best/pet.json exists`)
  t.ok(fs.readdirSync(o.model).some(f => /\.safetensors$|\.bin$/.test(f)), `${what}: OUT/best holds the weights`)
  t.ok(fs.existsSync(o.report), `${what}: the run report was written (${path.basename(o.report)})`)
  t.ok(isAccuracyOver(o.devAccuracy, 64), `${what}: devAccuracy over the 64 dev records, k/64 (${o.devAccuracy})`)
  t.equal(o.kind, 'pet', `${what}: Classifier.load read a PET checkpoint`)
  t.same([...o.labels].sort(), LABELS, `${what}: the classifier's labels are the verbalizer's`)
  t.equal(o.predictions.length, TEXTS.length, `${what}: one classification per text`)
  for (const [i, p] of o.predictions.entries()) {
    t.ok(LABELS.includes(p.label), `${what}: text ${i}: label '${p.label}' is a verbalizer label`)
    t.same(Object.keys(p.probs).sort(), LABELS, `${what}: text ${i}: a probability per label`)
    const probs = Object.values(p.probs)
    t.ok(probs.every(x => x >= 0 && x <= 1), `${what}: text ${i}: probabilities in [0, 1]`)
    t.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-6, `${what}: text ${i}: probabilities sum to 1`)
    t.ok(Object.values(p.scores).every(Number.isFinite), `${what}: text ${i}: finite scores`)
    t.equal(p.label, LABELS.reduce((a, b) => (p.probs[a] >= p.probs[b] ? a : b)), `${what}: text ${i}: the label is the most probable one`)
  }
  return o
}

/** The CommonJS consumer's result: the ESM one trains on the same 32 records with the same defaults. */
let cjsResult: ConsumerResult | undefined

// Shared by both consumers: where the addon that this process loaded came from (Linux: /proc/self/maps).
const mapsSnippet = `fs.existsSync('/proc/self/maps')
    ? [...new Set(fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').map(l => l.slice(l.indexOf('/'))).filter(p => p.endsWith('pet_mlm.node')))]
    : []`

const cjsConsumer = `'use strict'
// A plain CommonJS user of the installed package.
const fs = require('node:fs')
const path = require('node:path')
const { train, Classifier } = require('pet-mlm')
const { MaskedLM } = require('pet-mlm/advanced')

async function main () {
  const t0 = Date.now()
  const out = process.argv[2]
  const valid = path.join(path.dirname(require.resolve('pet-mlm/package.json')), 'data/sentiment/valid.jsonl')
  const records = fs.readFileSync(valid, 'utf8').split('\\n').filter(Boolean).map(l => JSON.parse(l))
  const result = await train({
    train: records.slice(0, 32), dev: records.slice(32, 96),
    pattern: '[MASK]满意。{text}', verbalizer: { positive: ['很'], negative: ['不'] }, epochs: 1, out
  })
  const classifier = await Classifier.load(result.model)
  const predictions = await classifier.classify(${JSON.stringify(TEXTS)})
  const addons = ${mapsSnippet}
  console.log('RESULT ' + JSON.stringify({
    resolved: require.resolve('pet-mlm'), addons, labeled: result.labeled, model: result.model, out: result.out,
    devAccuracy: result.devAccuracy, bestEpoch: result.bestEpoch, epochs: result.epochs, report: result.report.json,
    labels: classifier.labels, kind: classifier.kind, predictions, seconds: (Date.now() - t0) / 1000,
    advanced: { maskedLM: typeof MaskedLM.load, atRoot: 'MaskedLM' in require('pet-mlm') }
  }))
  classifier.dispose()
}
main().catch(err => { console.error(err); process.exit(1) })
`

const esmConsumer = `// An ESM TypeScript user of the installed package: strict, type-checked against its declarations.
import { train, Classifier, PetError, type Classification, type TrainOptions, type TrainResult } from 'pet-mlm'
import * as root from 'pet-mlm'
import { MaskedLM, type NativePrecision } from 'pet-mlm/advanced'
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'

const require = createRequire(import.meta.url)
const t0 = Date.now()
const out = process.argv[2]
if (out === undefined) throw new Error('usage: consumer.mjs OUT')
const valid = path.join(path.dirname(require.resolve('pet-mlm/package.json')), 'data/sentiment/valid.jsonl')
const dev = fs.readFileSync(valid, 'utf8').split('\\n').filter(Boolean).slice(32, 96).map(l => JSON.parse(l) as { text: string, label: string })

const options: TrainOptions = {
  train: valid, limitTrain: 32, dev,
  pattern: '[MASK]满意。{text}', verbalizer: { positive: ['很'], negative: ['不'] }, epochs: 1, out
}
// The declarations are real types, not any: tsc rejects these (and an unused @ts-expect-error is itself an error).
// @ts-expect-error epochs is a number
const wrongType: TrainOptions = { ...options, epochs: 'one' }
// @ts-expect-error pattern is required
const missing: TrainOptions = { train: valid }
// @ts-expect-error the building blocks are not at the root ('pet-mlm/advanced' has them)
type NotAtRoot = typeof import('pet-mlm').MaskedLM
const precision: NativePrecision = 'fp32'
void wrongType; void missing; void precision; void (undefined as NotAtRoot | undefined)

const result: TrainResult = await train(options)
const classifier: Classifier = await Classifier.load(result.model)
const predictions: Classification[] = await classifier.classify(${JSON.stringify(TEXTS)})
const label: string = predictions[0].label
void label
const addons: string[] = ${mapsSnippet}
console.log('RESULT ' + JSON.stringify({
  resolved: require.resolve('pet-mlm'), addons, labeled: result.labeled, model: result.model, out: result.out,
  devAccuracy: result.devAccuracy, bestEpoch: result.bestEpoch, epochs: result.epochs, report: result.report.json,
  labels: classifier.labels, kind: classifier.kind, predictions, seconds: (Date.now() - t0) / 1000,
  petError: typeof PetError,
  advanced: { maskedLM: typeof MaskedLM.load, atRoot: 'MaskedLM' in root }
}))
classifier.dispose()
`

t.test('CommonJS: require(\'pet-mlm\') and require(\'pet-mlm/advanced\'), train on 32 examples, load, classify', async t => {
  t.setTimeout(10 * 60 * 1000)
  if (!installedOk) { t.fail('the package did not install'); return }
  fs.writeFileSync(path.join(project, 'consumer.cjs'), cjsConsumer)
  const out = path.join(work, 'run-cjs')
  const r = await run(process.execPath, ['consumer.cjs', out], project)
  if (!t.equal(r.code, 0, `node consumer.cjs exits 0 (${r.seconds.toFixed(1)} s)`, { output: tail(r) })) return
  figures.cjsSeconds = r.seconds
  cjsResult = checkConsumer(t, r, out, 'CommonJS')
})

t.test('ESM TypeScript: import { train, Classifier } from \'pet-mlm\' (and MaskedLM from \'pet-mlm/advanced\') with top-level await, tsc --strict, run', async t => {
  t.setTimeout(10 * 60 * 1000)
  if (!installedOk) { t.fail('the package did not install'); return }
  fs.writeFileSync(path.join(project, 'consumer.mts'), esmConsumer)
  fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'node16',
      moduleResolution: 'node16',
      strict: true,
      skipLibCheck: false, // pet-mlm's declarations are checked too, under the consumer's strict settings
      outDir: 'out',
      // the consumer's own @types/node (a TypeScript user installs it; here the repo's, not fetched again)
      typeRoots: [path.join(repo, 'node_modules', '@types')],
      types: ['node']
    },
    files: ['consumer.mts']
  }, null, 2) + '\n')

  const check = await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--strict', '--noEmit', '--listFiles'], project)
  // --listFiles puts hundreds of paths after the diagnostics: show the errors themselves on failure
  const errors = check.out.split('\n').filter(l => /error TS\d+/.test(l)).join('\n')
  t.equal(check.code, 0, `tsc --strict --noEmit passes (${check.seconds.toFixed(1)} s)`, { output: errors || tail(check) })
  const listed = check.out.split('\n').map(l => path.resolve(l.trim()))
  t.ok(listed.includes(path.join(installed, 'dist', 'lib', 'index.d.ts')), 'the types came from the installed pet-mlm (dist/lib/index.d.ts)', { output: tail(check, 4000) })
  t.ok(listed.includes(path.join(installed, 'dist', 'lib', 'advanced.d.ts')), '\'pet-mlm/advanced\' resolved through "exports" to dist/lib/advanced.d.ts')
  t.ok(listed.includes(path.join(installed, 'dist', 'bindings.d.ts')), 'and its bindings.d.ts')
  t.notOk(listed.some(f => f.startsWith(path.join(repo, 'dist') + path.sep) || f.startsWith(path.join(repo, 'lib') + path.sep)), 'nothing from the repo\'s own lib/ or dist/')
  figures.tscCheckSeconds = check.seconds
  if (check.code !== 0) return

  const emit = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], project)
  if (!t.equal(emit.code, 0, 'tsc emits out/consumer.mjs', { output: tail(emit) })) return
  const js = path.join(project, 'out', 'consumer.mjs')
  t.ok(fs.existsSync(js), 'out/consumer.mjs exists')
  t.match(fs.readFileSync(js, 'utf8'), /^import \{[^}]*\btrain\b[^}]*\} from 'pet-mlm';$/m, 'it is ESM importing from \'pet-mlm\'')
  const out = path.join(work, 'run-esm')
  const r = await run(process.execPath, [js, out], project)
  if (!t.equal(r.code, 0, `node out/consumer.mjs exits 0 (${r.seconds.toFixed(1)} s)`, { output: tail(r) })) return
  figures.esmSeconds = r.seconds
  const esm = checkConsumer(t, r, out, 'ESM')
  // the same run as the CommonJS consumer's (records 0..31 vs the file's first 32 lines, the same dev records and
  // defaults, seed included): the same dev accuracy and the same classifications
  if (esm !== undefined && cjsResult !== undefined) {
    t.equal(esm.devAccuracy, cjsResult.devAccuracy, 'ESM: the dev accuracy of the CommonJS run')
    t.same(esm.predictions, cjsResult.predictions, 'ESM: the classifications of the CommonJS run')
  }
})

t.teardown(() => {
  const json = JSON.stringify(figures, null, 2) + '\n'
  fs.writeFileSync(path.join(work, 'figures.json'), json)
  if (process.env.PET_MLM_PACKAGING_FIGURES) fs.writeFileSync(process.env.PET_MLM_PACKAGING_FIGURES, json)
})

t.test('figures', async t => {
  t.comment(`packaging figures: ${JSON.stringify(figures)}`)
  // what the tests above measured, each a positive number (a step that failed leaves its figure out)
  for (const k of ['packSeconds', 'tarballBytes', 'unpackedBytes', 'files', 'installSeconds', 'cjsSeconds', 'esmSeconds']) {
    const v = figures[k]
    t.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${k} recorded: ${v}`)
  }
  t.ok((figures.unpackedBytes as number) > (figures.tarballBytes as number), 'the tarball is compressed: unpacked it is larger')
})
