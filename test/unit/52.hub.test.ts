// Models named the HF way (`org/name`): resolved from the HF cache, else downloaded from a hub into the same
// layout Python's huggingface_hub writes. A mock hub on 127.0.0.1 answers as the real one does: resolve URLs with
// X-Repo-Commit and an ETag (git sha1 of small files; LFS files redirect to storage with X-Linked-Etag = sha256),
// Range requests, 401/404 with X-Error-Code.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as path from 'node:path'
import { command, usageOf } from '../../lib/cli/command'
import { PetError } from '../../lib/errors'
import { resolveModel, type DownloadProgress, type HubOptions } from '../../lib/hub'
import { workflows } from '../../lib/options'
import { workflowOptions } from '../../lib/validate'
import { withModelFolder } from '../../lib/workflows/common'
import { tokenize } from '../../lib/tokenize'
import { zeroShot } from '../../lib/workflows/zero-shot'
import { fixtures, tmpDir } from '../helpers/paths'

const source = path.join(fixtures, 'families/tiny-roberta')
const files = Object.fromEntries(fs.readdirSync(source).map(f => [f, fs.readFileSync(path.join(source, f))]))
const commitA = randomBytes(20).toString('hex')
const commitB = randomBytes(20).toString('hex')
const configB = Buffer.from(files['config.json'].toString().replace(/\}\s*$/, ',\n  "pet_revision": "v2"\n}\n'))
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex')
const isLfs = (f: string) => f.endsWith('.safetensors') || f === 'tokenizer.json'

interface Logged { method: string, url: string, range?: string, auth?: string, sent: number }

class MockHub {
  readonly log: Logged[] = []
  /** required token (Authorization: Bearer) */
  token?: string
  /** the next storage GET of this blob stops after N bytes, the connection cut */
  cut?: { file: string, after: number }
  /** the next HEAD gets no answer at all; the next storage GET of this blob sends N bytes, then nothing (open) */
  silentHead = false
  silentAfter?: { file: string, after: number }
  /** this file's storage bytes are served with one byte changed */
  corrupt?: string
  readonly commits: Record<string, Record<string, Buffer>> = { [commitA]: files, [commitB]: { ...files, 'config.json': configB } }
  readonly refs: Record<string, string> = { main: commitA, v2: commitB, [commitA]: commitA, [commitB]: commitB }
  private readonly server = http.createServer((req, res) => this.handle(req, res))
  /** LFS files redirect to storage on another origin, as the hub's to its CDN */
  private readonly storage = http.createServer((req, res) => this.handle(req, res))
  private storageUrl = ''

  async start (): Promise<string> {
    const listen = async (s: http.Server) => {
      await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
      return `http://127.0.0.1:${(s.address() as AddressInfo).port}`
    }
    this.storageUrl = await listen(this.storage)
    return await listen(this.server)
  }

  async stop (): Promise<void> {
    for (const s of [this.server, this.storage]) {
      s.closeAllConnections()
      await new Promise(resolve => s.close(resolve))
    }
  }

  private blobByHash (hash: string): [string, Buffer] | undefined {
    for (const c of Object.values(this.commits)) for (const [f, b] of Object.entries(c)) if (sha256(b) === hash) return [f, b]
    return undefined
  }

  private handle (req: http.IncomingMessage, res: http.ServerResponse) {
    const entry: Logged = { method: req.method ?? '', url: req.url ?? '', range: req.headers.range, auth: req.headers.authorization, sent: 0 }
    this.log.push(entry)
    const fail = (status: number, headers: Record<string, string>) => { res.writeHead(status, headers); res.end() }
    if (this.silentHead && req.method === 'HEAD') { this.silentHead = false; return }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(req.url ?? '')
    if (cdn !== null) {
      const found = this.blobByHash(cdn[1])
      if (found === undefined) return fail(404, {})
      return this.serve(req, res, found[0], found[1], {}, entry)
    }
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url ?? '')
    if (m === null) return fail(404, {})
    const [, repo, rev, file] = m
    if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) {
      return req.headers.authorization === undefined
        ? fail(401, { 'X-Error-Code': 'RepoNotFound', 'X-Error-Message': 'Repository not found' })
        : fail(401, { 'X-Error-Message': 'Invalid credentials in Authorization header' })
    }
    if (repo !== 'acme/tiny-roberta') return fail(404, { 'X-Error-Code': 'RepoNotFound', 'X-Error-Message': 'Repository not found' })
    const commit = this.refs[decodeURIComponent(rev)]
    if (commit === undefined) return fail(404, { 'X-Error-Code': 'RevisionNotFound', 'X-Error-Message': 'Invalid rev id' })
    const body = this.commits[commit][decodeURIComponent(file)]
    if (body === undefined) return fail(404, { 'X-Error-Code': 'EntryNotFound', 'X-Error-Message': 'Entry not found', 'X-Repo-Commit': commit })
    if (isLfs(file)) {
      const hash = sha256(body)
      return fail(302, { Location: `${this.storageUrl}/cdn/${hash}`, 'X-Repo-Commit': commit, 'X-Linked-Etag': `"${hash}"`, 'X-Linked-Size': String(body.length), ETag: `"${gitSha1(Buffer.from('pointer'))}"` })
    }
    return this.serve(req, res, file, body, { 'X-Repo-Commit': commit, ETag: `"${gitSha1(body)}"` }, entry)
  }

  private serve (req: http.IncomingMessage, res: http.ServerResponse, file: string, body: Buffer, headers: Record<string, string>, entry: Logged): void {
    let data = body
    if (this.corrupt === file) { data = Buffer.from(body); data[data.length >> 1] ^= 0xff }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
    const start = range !== null ? Number(range[1]) : 0
    const part = data.subarray(start)
    res.writeHead(range !== null ? 206 : 200, {
      ...headers,
      'Accept-Ranges': 'bytes',
      'Content-Length': String(part.length),
      ...(range !== null ? { 'Content-Range': `bytes ${start}-${data.length - 1}/${data.length}` } : {})
    })
    if (req.method === 'HEAD') { res.end(); return }
    if (this.silentAfter?.file === file) {
      entry.sent = this.silentAfter.after
      res.write(part.subarray(0, this.silentAfter.after))
      this.silentAfter = undefined
      return
    }
    if (this.cut?.file === file) {
      const n = this.cut.after
      this.cut = undefined
      entry.sent = n
      res.write(part.subarray(0, n), () => setTimeout(() => res.socket?.destroy(), 20))
      return
    }
    entry.sent = part.length
    res.end(part)
  }
}

async function hub (t: Tap.Test): Promise<{ mock: MockHub, o: HubOptions & { cacheDir: string, endpoint: string } }> {
  const mock = new MockHub()
  const endpoint = await mock.start()
  t.teardown(() => mock.stop())
  return { mock, o: { cacheDir: tmpDir('hf-cache-'), endpoint, token: '', offline: false } }
}

const rejectsCode = async (t: Tap.Test, p: Promise<unknown>, code: string, pattern: RegExp) => {
  const err = await p.then(() => null, (e: unknown) => e)
  t.ok(err instanceof PetError, `a PetError (got ${String(err)})`)
  t.equal((err as PetError | null)?.code, code, 'its code')
  t.match((err as Error | null)?.message ?? '', pattern, 'its message')
  return err as PetError
}

const repoDir = (cache: string) => path.join(cache, 'models--acme--tiny-roberta')
const cdnGets = (mock: MockHub) => mock.log.filter(l => l.method === 'GET' && l.url.startsWith('/cdn/'))

t.test('download into the HF cache layout (env vars), then the cache alone with the hub stopped', async t => {
  const mock = new MockHub()
  const endpoint = await mock.start()
  const cache = tmpDir('hf-cache-')
  const saved = { ...process.env }
  t.teardown(() => { process.env = saved })
  process.env.HF_HUB_CACHE = cache
  process.env.HF_ENDPOINT = endpoint
  process.env.HF_HOME = tmpDir('hf-home-')
  delete process.env.HF_TOKEN
  delete process.env.HF_HUB_OFFLINE
  const events: DownloadProgress[] = []
  const dir = await resolveModel('acme/tiny-roberta', { onProgress: e => events.push(e) })
  const r = repoDir(cache)
  t.equal(dir, path.join(r, 'snapshots', commitA))
  t.equal(fs.readFileSync(path.join(r, 'refs/main'), 'utf8'), commitA, 'refs/main holds the commit')
  t.same(fs.readdirSync(dir).sort(), Object.keys(files).sort(), 'every file of the model')
  for (const [f, body] of Object.entries(files)) {
    const p = path.join(dir, f)
    t.ok(fs.lstatSync(p).isSymbolicLink(), `${f} is a symlink`)
    t.equal(fs.readlinkSync(p), path.join('..', '..', 'blobs', isLfs(f) ? sha256(body) : gitSha1(body)), `${f} -> blobs/<etag>`)
    t.ok(fs.readFileSync(p).equals(body), `${f}: the bytes served`)
  }
  t.same(fs.readdirSync(path.join(r, 'blobs')).filter(f => f.endsWith('.incomplete')), [], 'no partial file left')
  const last = events.filter(e => e.file === 'model.safetensors').at(-1)
  t.same(last, { file: 'model.safetensors', done: files['model.safetensors'].length, total: files['model.safetensors'].length }, 'progress reached the size')
  t.ok(events.filter(e => e.file === 'model.safetensors').length > 1, 'progress while it downloads')
  t.ok(mock.log.every(l => l.auth === undefined), 'no token, no Authorization header')
  await mock.stop()
  t.equal(await resolveModel('acme/tiny-roberta'), dir, 'second resolve: from the cache, hub down')
  t.equal(await resolveModel(dir), dir, 'an existing folder is itself')
})

t.test('HF_HUB_OFFLINE: the cache only, a clear error without it', async t => {
  const { mock, o } = await hub(t)
  const saved = process.env.HF_HUB_OFFLINE
  t.teardown(() => { if (saved === undefined) delete process.env.HF_HUB_OFFLINE; else process.env.HF_HUB_OFFLINE = saved })
  process.env.HF_HUB_OFFLINE = '1'
  const offline = { ...o, offline: undefined }
  await rejectsCode(t, resolveModel('acme/tiny-roberta', offline), 'EOFFLINE', /acme\/tiny-roberta.*not in the HF cache.*HF_HUB_OFFLINE/)
  t.equal(mock.log.length, 0, 'offline: no request')
  delete process.env.HF_HUB_OFFLINE
  const dir = await resolveModel('acme/tiny-roberta', offline)
  const n = mock.log.length
  process.env.HF_HUB_OFFLINE = '1'
  t.equal(await resolveModel('acme/tiny-roberta', offline), dir, 'offline with the model cached')
  t.equal(mock.log.length, n, 'no request')
})

t.test('a model that is neither a folder nor on the hub', async t => {
  const { o } = await hub(t)
  const err = await rejectsCode(t, resolveModel('acme/missing', o), 'ENOENT', /model 'acme\/missing' not found on the hub .*HTTP 404.*no local folder .*acme\/missing exists either/)
  t.notOk(fs.existsSync(repoDir(o.cacheDir).replace('tiny-roberta', 'missing')) && fs.readdirSync(repoDir(o.cacheDir).replace('tiny-roberta', 'missing')).includes('snapshots'), 'no snapshot')
  t.ok(err)
  await rejectsCode(t, resolveModel('./no/such/dir', o), 'ENOENT', /model directory not found/)
})

t.test('a wrong token is refused; the right one is sent to the hub, not to storage', async t => {
  const { mock, o } = await hub(t)
  mock.token = 'hf_good'
  await rejectsCode(t, resolveModel('acme/tiny-roberta', { ...o, token: 'hf_wrong' }), 'EAUTH', /refused access.*HTTP 401.*Invalid credentials.*check HF_TOKEN/)
  await rejectsCode(t, resolveModel('acme/tiny-roberta', o), 'ENOENT', /not found.*HTTP 401.*needs HF_TOKEN/)
  t.notOk(fs.existsSync(path.join(repoDir(o.cacheDir), 'snapshots')), 'nothing in the snapshot')
  mock.log.length = 0
  const dir = await resolveModel('acme/tiny-roberta', { ...o, token: 'hf_good' })
  t.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(files['model.safetensors']))
  t.ok(mock.log.filter(l => l.url.includes('/resolve/')).every(l => l.auth === 'Bearer hf_good'), 'the token on every hub request')
  t.ok(cdnGets(mock).length > 0 && cdnGets(mock).every(l => l.auth === undefined), 'not on the storage redirects')
})

t.test('a connection cut mid-file keeps the part, and the next run resumes it with a Range request', async t => {
  const { mock, o } = await hub(t)
  const total = files['model.safetensors'].length
  mock.cut = { file: 'model.safetensors', after: 300_000 }
  await rejectsCode(t, resolveModel('acme/tiny-roberta', o), 'ENET', /connection .*model\.safetensors.*kept in .*\.incomplete.*resumes/)
  const blobs = path.join(repoDir(o.cacheDir), 'blobs')
  const incomplete = path.join(blobs, `${sha256(files['model.safetensors'])}.incomplete`)
  t.ok(fs.existsSync(incomplete), 'the part is kept')
  const kept = fs.statSync(incomplete).size
  t.ok(kept > 0 && kept < total, `a part: ${kept} of ${total}`)
  t.notOk(fs.existsSync(path.join(repoDir(o.cacheDir), 'snapshots', commitA, 'model.safetensors')), 'no snapshot entry for it')
  t.notOk(fs.existsSync(path.join(repoDir(o.cacheDir), 'refs/main')), 'no ref yet')
  mock.log.length = 0
  const dir = await resolveModel('acme/tiny-roberta', o)
  const gets = cdnGets(mock).filter(l => l.url.endsWith(sha256(files['model.safetensors'])))
  t.equal(gets.length, 1)
  t.equal(gets[0].range, `bytes=${kept}-`, 'resumed where it stopped')
  t.equal(gets[0].sent, total - kept, 'only the rest was sent')
  t.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(files['model.safetensors']), 'the whole file, right')
  t.notOk(fs.existsSync(incomplete))
})

t.test('a hub that stops answering is an error after HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT, the part kept', async t => {
  const { mock, o } = await hub(t)
  const saved = { etag: process.env.HF_HUB_ETAG_TIMEOUT, download: process.env.HF_HUB_DOWNLOAD_TIMEOUT }
  t.teardown(() => {
    for (const [k, v] of [['HF_HUB_ETAG_TIMEOUT', saved.etag], ['HF_HUB_DOWNLOAD_TIMEOUT', saved.download]] as const) {
      if (v === undefined) delete process.env[k]; else process.env[k] = v
    }
  })
  process.env.HF_HUB_ETAG_TIMEOUT = '0.3'
  process.env.HF_HUB_DOWNLOAD_TIMEOUT = '0.4'
  mock.silentHead = true
  let t0 = Date.now()
  await rejectsCode(t, resolveModel('acme/tiny-roberta', o), 'ENET', /the hub sent nothing for 0\.3 s \(HF_HUB_ETAG_TIMEOUT\) for config\.json/)
  t.ok(Date.now() - t0 < 5000, `refused within seconds (${Date.now() - t0} ms), not undici's 5 minutes`)

  const total = files['model.safetensors'].length
  mock.silentAfter = { file: 'model.safetensors', after: 200_000 }
  t0 = Date.now()
  await rejectsCode(t, resolveModel('acme/tiny-roberta', o), 'ENET',
    new RegExp(`the hub sent nothing for 0\\.4 s \\(HF_HUB_DOWNLOAD_TIMEOUT\\) downloading model\\.safetensors at byte 200000 of ${total}; the part is kept`))
  t.ok(Date.now() - t0 < 5000, `refused within seconds (${Date.now() - t0} ms)`)
  const dir = await resolveModel('acme/tiny-roberta', o)
  t.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(files['model.safetensors']), 'the next run resumes it to the whole file')

  process.env.HF_HUB_DOWNLOAD_TIMEOUT = 'soon'
  await rejectsCode(t, resolveModel('acme/other', o), 'EINVAL', /Expected a positive number of seconds for HF_HUB_DOWNLOAD_TIMEOUT but received "soon"/)
})

t.test('a checksum mismatch leaves no snapshot entry and no blob', async t => {
  const { mock, o } = await hub(t)
  mock.corrupt = 'model.safetensors'
  await rejectsCode(t, resolveModel('acme/tiny-roberta', o), 'ECHECKSUM', /model\.safetensors failed its checksum \(sha256 [0-9a-f]{64}, the hub said [0-9a-f]{64}\)/)
  const r = repoDir(o.cacheDir)
  t.notOk(fs.existsSync(path.join(r, 'snapshots', commitA, 'model.safetensors')), 'no snapshot entry')
  t.same(fs.readdirSync(path.join(r, 'blobs')).filter(f => f.startsWith(sha256(files['model.safetensors']))), [], 'no blob, no partial file')
  // a small (non-LFS) file is checked by its git blob sha1
  mock.corrupt = 'config.json'
  const o2 = { ...o, cacheDir: tmpDir('hf-cache-') }
  await rejectsCode(t, resolveModel('acme/tiny-roberta', o2), 'ECHECKSUM', /config\.json failed its checksum \(git sha1 [0-9a-f]{40}/)
  t.notOk(fs.existsSync(path.join(repoDir(o2.cacheDir), 'snapshots', commitA, 'config.json')))
  mock.corrupt = undefined
  const dir = await resolveModel('acme/tiny-roberta', o)
  t.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(files['model.safetensors']), 'a clean retry succeeds')
})

t.test('the revision option: a branch, a commit hash, an unknown one', async t => {
  const { mock, o } = await hub(t)
  const main = await resolveModel('acme/tiny-roberta', o)
  const n = cdnGets(mock).length
  const v2 = await resolveModel('acme/tiny-roberta', { ...o, revision: 'v2' })
  const r = repoDir(o.cacheDir)
  t.equal(v2, path.join(r, 'snapshots', commitB))
  t.equal(fs.readFileSync(path.join(r, 'refs/v2'), 'utf8'), commitB)
  t.ok(fs.readFileSync(path.join(v2, 'config.json')).equals(configB), "v2's config.json")
  t.ok(fs.readFileSync(path.join(main, 'config.json')).equals(files['config.json']), "main's config.json")
  t.equal(fs.realpathSync(path.join(v2, 'model.safetensors')), fs.realpathSync(path.join(main, 'model.safetensors')), 'one blob for both')
  t.equal(cdnGets(mock).length, n, 'v2 downloaded none of the blobs it shares with main')
  t.equal(await resolveModel('acme/tiny-roberta', { ...o, revision: commitB, offline: true }), v2, 'a commit hash, from the cache')
  await rejectsCode(t, resolveModel('acme/tiny-roberta', { ...o, revision: 'nope' }), 'ENOENT', /revision nope \(no such revision\)/)
})

t.test('the CLI resolves --model org/name (and --revision) before the workflow runs', async t => {
  const { mock, o } = await hub(t)
  const saved = { ...process.env }
  t.teardown(() => { process.env = saved })
  Object.assign(process.env, { HF_HUB_CACHE: o.cacheDir, HF_ENDPOINT: o.endpoint, HF_HOME: tmpDir('hf-home-') })
  delete process.env.HF_TOKEN
  delete process.env.HF_HUB_OFFLINE
  const seen: Record<string, unknown>[] = []
  const cmd = command({
    name: 'probe',
    workflow: { name: 'probe', options: ['model', 'device'] },
    about: 'test',
    run: async (options: Record<string, unknown>) => { seen.push(options); return {} },
    print: () => {}
  })
  t.match(cmd.usage, /--model DIR\n.*org\/name[\s\S]*--revision REV\n.*\(default main\)/, '--revision in the usage, after --model')
  // the library's workflows list revision themselves: the CLI adds no second flag
  for (const w of [workflows.zeroShot, workflows.tokenize, workflows.predict]) {
    t.equal(usageOf({ name: w.name, workflow: w, about: '' }).match(/--revision REV/g)?.length, 1, `${w.name}: one --revision`)
  }
  await cmd.run(['--model', 'acme/tiny-roberta', '--device', 'cpu'])
  await cmd.run(['--model', 'acme/tiny-roberta', '--revision', 'v2'])
  const r = repoDir(o.cacheDir)
  t.same(seen[0], { model: path.join(r, 'snapshots', commitA), device: 'cpu' }, 'the workflow gets the snapshot folder')
  t.same(seen[1], { model: path.join(r, 'snapshots', commitB) }, 'of the revision asked for, and no revision option')
  t.ok(mock.log.some(l => l.url.includes('/resolve/v2/config.json')))
  await t.rejects(cmd.run(['--model', 'acme/missing']), { code: 'ENOENT', message: /acme\/missing/ })
})

/** process.env pointed at the mock hub and its cache, restored at the test's end */
function hubEnv (t: Tap.Test, o: { cacheDir: string, endpoint: string }): void {
  const saved = { ...process.env }
  t.teardown(() => { process.env = saved })
  Object.assign(process.env, { HF_HUB_CACHE: o.cacheDir, HF_ENDPOINT: o.endpoint, HF_HOME: tmpDir('hf-home-') })
  delete process.env.HF_TOKEN
  delete process.env.HF_HUB_OFFLINE
}

t.test('the workflows take a revision: the hub name resolves at it (withModelFolder)', async t => {
  const { mock, o } = await hub(t)
  hubEnv(t, o)
  const r = repoDir(o.cacheDir)
  const task = { pattern: '{text} It was[MASK].', verbalizer: { pos: ['good'], neg: ['bad'] }, maxLength: 24, threads: 1,
    data: [{ text: 'a good movie', label: 'pos' }, { text: 'a bad film', label: 'neg' }] }
  const v2 = await zeroShot({ ...task, model: 'acme/tiny-roberta', revision: 'v2' })
  t.equal(v2.model, path.join(r, 'snapshots', commitB), "zeroShot at revision v2 scores v2's snapshot")
  t.ok(fs.readFileSync(path.join(v2.model, 'config.json')).equals(configB), "with v2's config.json")
  t.ok(mock.log.some(l => l.url.includes('/resolve/v2/config.json')), 'asked the hub for v2')
  t.notOk(mock.log.some(l => l.url.includes('/resolve/main/')), 'and not for main')
  const main = await zeroShot({ ...task, model: 'acme/tiny-roberta' })
  t.equal(main.model, path.join(r, 'snapshots', commitA), 'without a revision: main')
  t.equal(v2.predictions.length, 2)
  // the settled options of any workflow (train here) at a commit hash: from the cache, no request
  const n = mock.log.length
  const settled = workflowOptions<{ model?: string, revision?: string }>(workflows.train,
    { model: 'acme/tiny-roberta', revision: commitB, train: task.data, pattern: task.pattern, verbalizer: task.verbalizer })
  t.equal(settled.revision, commitB)
  t.equal((await withModelFolder(settled)).model, path.join(r, 'snapshots', commitB), 'train resolves at the commit')
  t.equal(workflowOptions<{ revision?: string }>(workflows.train, { train: task.data, pattern: task.pattern, verbalizer: task.verbalizer }).revision, 'main', "the table's default")
  t.equal(mock.log.length, n, 'a cached commit: no request')
  // bad revisions: the option's check, the hub's answer
  await rejectsCode(t, zeroShot({ ...task, model: 'acme/tiny-roberta', revision: '' }), 'EINVAL', /Expected non-empty string for revision/)
  await rejectsCode(t, zeroShot({ ...task, model: 'acme/tiny-roberta', revision: 2 as unknown as string }), 'EINVAL', /for revision but received 2 of type number/)
  await rejectsCode(t, zeroShot({ ...task, model: 'acme/tiny-roberta', revision: '../../outside' }), 'EINVAL', /branch, tag or commit hash for revision but received "\.\.\/\.\.\/outside"/)
  t.notOk(fs.existsSync(path.join(o.cacheDir, 'outside')), 'nothing written outside the repository folder')
  await rejectsCode(t, zeroShot({ ...task, model: 'acme/tiny-roberta', revision: 'nope' }), 'ENOENT', /revision nope \(no such revision\)/)
})

t.test("a workflow downloading a hub-named model reports each file's bytes as 'download' events, and its signal stops it", async t => {
  const { mock, o } = await hub(t)
  hubEnv(t, o)
  const task = { pattern: '{text} It was[MASK].', verbalizer: { pos: ['good'], neg: ['bad'] }, maxLength: 24, threads: 1,
    data: [{ text: 'a good movie', label: 'pos' }, { text: 'a bad film', label: 'neg' }] }
  // an abort before the download: EABORT, and no snapshot left behind
  const ac = new AbortController()
  ac.abort()
  await rejectsCode(t, zeroShot({ ...task, model: 'acme/tiny-roberta', signal: ac.signal }), 'EABORT', /abort/)
  t.notOk(fs.existsSync(path.join(repoDir(o.cacheDir), 'snapshots', commitA, 'config.json')), 'the aborted call left no snapshot file')
  const events: Array<{ kind: string, file?: string, done?: number, total?: number }> = []
  const r = await zeroShot({ ...task, model: 'acme/tiny-roberta', onProgress: e => { events.push(e) } })
  const downloads = events.filter(e => e.kind === 'download')
  const last = new Map<string, { done: number, total: number }>()
  for (const e of downloads) last.set(e.file as string, { done: e.done as number, total: e.total as number })
  const snapshotFiles = fs.readdirSync(r.model)
  t.ok(snapshotFiles.includes('model.safetensors'), 'the weights were downloaded')
  for (const f of snapshotFiles) {
    t.same(last.get(f), { done: files[f].length, total: files[f].length }, `${f}: the last event has all its bytes`)
  }
  t.equal(last.size, snapshotFiles.length, 'events name just the downloaded files')
  const firstScore = events.findIndex(e => e.kind === 'score')
  t.ok(firstScore > events.findLastIndex(e => e.kind === 'download'), 'the downloads are reported before scoring')
  t.equal(cdnGets(mock).length, [...last.keys()].filter(isLfs).length, 'each LFS file fetched once')
  // cached now: no download events
  const again: string[] = []
  await zeroShot({ ...task, model: 'acme/tiny-roberta', onProgress: e => { again.push(e.kind) } })
  t.notOk(again.includes('download'), 'from the cache: no download events')
})

t.test('tokenize() takes a hub name already in the HF cache, and says to call resolveModel() for one that is not', async t => {
  const { mock, o } = await hub(t)
  hubEnv(t, o)
  await rejectsCode(t, tokenize({ model: 'acme/tiny-roberta', text: 'a good movie' }), 'ENOTCACHED',
    /model 'acme\/tiny-roberta' \(revision main\) is not in the HF cache .*tokenize\(\) reads the cache only; download it first with resolveModel\('acme\/tiny-roberta'\)/)
  t.equal(mock.log.length, 0, 'tokenize asks the hub nothing')
  const main = await resolveModel('acme/tiny-roberta', o)
  const byName = await tokenize({ model: 'acme/tiny-roberta', text: 'a good movie' })
  const byFolder = await tokenize({ model: source, text: 'a good movie' })
  t.same(byName, byFolder, "the cached snapshot's tokenizer: the folder's ids")
  t.equal(byName.texts[0].inputIds[0], 0, "RoBERTa's <s>, not the bundled model's [CLS]")
  t.same(await tokenize({ model: main, text: 'a good movie' }), byFolder, 'the snapshot folder itself')
  await rejectsCode(t, tokenize({ model: 'acme/tiny-roberta', revision: 'v2', text: 'x' }), 'ENOTCACHED', /revision v2\) is not in the HF cache/)
  await resolveModel('acme/tiny-roberta', { ...o, revision: 'v2' })
  const n = mock.log.length
  t.same(await tokenize({ model: 'acme/tiny-roberta', revision: 'v2', text: 'a good movie' }), byFolder, 'at v2, once cached')
  t.same(await tokenize({ model: 'acme/tiny-roberta', revision: commitB, text: 'a good movie' }), byFolder, 'at its commit hash')
  t.equal(mock.log.length, n, 'no request')
  await rejectsCode(t, tokenize({ model: './no/such/dir', text: 'x' }), 'ENOENT', /model directory not found: .*no\/such\/dir/)
  await rejectsCode(t, tokenize({ model: 'acme/tiny-roberta', revision: '../x', text: 'x' }), 'EINVAL', /for revision but received "\.\.\/x"/)
})

t.test('two resolves of one name at once: each file downloaded once, under a lock per blob, none left', async t => {
  const { mock, o } = await hub(t)
  const [a, b] = await Promise.all([resolveModel('acme/tiny-roberta', o), resolveModel('acme/tiny-roberta', o)])
  const r = repoDir(o.cacheDir)
  t.equal(a, path.join(r, 'snapshots', commitA))
  t.equal(b, a)
  for (const [f, body] of Object.entries(files)) t.ok(fs.readFileSync(path.join(a, f)).equals(body), `${f}: the bytes served`)
  const weights = sha256(files['model.safetensors'])
  t.equal(cdnGets(mock).filter(l => l.url.endsWith(weights)).length, 1, 'the weights fetched once')
  t.equal(mock.log.filter(l => l.method === 'GET' && l.url.endsWith('/resolve/main/config.json')).length, 1, 'config.json fetched once')
  t.same(fs.readdirSync(path.join(r, 'blobs')).filter(f => !/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(f)), [], 'no partial or temporary file')
  const locks = path.join(o.cacheDir, '.locks', 'models--acme--tiny-roberta')
  t.ok(fs.existsSync(locks), 'the locks live where huggingface_hub keeps its own')
  t.same(fs.readdirSync(locks), [], 'and are released')
})

t.test("another process's lock is waited for, a stale one broken, and an abort stops the wait", async t => {
  const { mock, o } = await hub(t)
  const weights = sha256(files['model.safetensors'])
  const lockOf = (cache: string) => path.join(cache, '.locks', 'models--acme--tiny-roberta', `${weights}.lock`)
  const hold = (cache: string) => {
    fs.mkdirSync(path.dirname(lockOf(cache)), { recursive: true })
    fs.writeFileSync(lockOf(cache), 'another process\n')
  }
  hold(o.cacheDir)
  let settled = false
  const waiting = resolveModel('acme/tiny-roberta', o).finally(() => { settled = true })
  await new Promise(resolve => setTimeout(resolve, 600))
  t.notOk(settled, 'it waits while the lock is held')
  t.equal(cdnGets(mock).filter(l => l.url.endsWith(weights)).length, 0, 'without fetching the locked blob')
  t.equal(fs.readFileSync(lockOf(o.cacheDir), 'utf8'), 'another process\n', "the holder's lock untouched")
  fs.rmSync(lockOf(o.cacheDir))
  const dir = await waiting
  t.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(files['model.safetensors']), 'then downloads it')
  // a lock left by a crashed process (not refreshed for minutes) is broken
  const stale = tmpDir('hf-cache-')
  hold(stale)
  const old = new Date(Date.now() - 5 * 60_000)
  fs.utimesSync(lockOf(stale), old, old)
  const started = Date.now()
  const dir2 = await resolveModel('acme/tiny-roberta', { ...o, cacheDir: stale })
  t.ok(Date.now() - started < 10_000, 'without waiting out a timeout')
  t.ok(fs.readFileSync(path.join(dir2, 'model.safetensors')).equals(files['model.safetensors']))
  t.notOk(fs.existsSync(lockOf(stale)), 'the stale lock is gone')
  t.same(fs.readdirSync(path.dirname(lockOf(stale))), [], 'nothing set aside is left')
  // an AbortSignal ends the wait
  const third = tmpDir('hf-cache-')
  hold(third)
  const ac = new AbortController()
  setTimeout(() => ac.abort(), 300)
  await rejectsCode(t, resolveModel('acme/tiny-roberta', { ...o, cacheDir: third, signal: ac.signal }), 'EABORT', /model\.safetensors was aborted while another process held .*\.lock/)
  t.ok(fs.existsSync(lockOf(third)), "the other process's lock stays")
})
