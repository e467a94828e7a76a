// A model named the Hugging Face way (`org/name`) as a local folder: an existing folder is itself; otherwise the
// name is looked up in the HF cache (the layout Python's huggingface_hub writes, so both share one cache) and the
// files a model needs are downloaded into it when missing. Downloads resume from a `.incomplete` file with an HTTP
// Range request, and a file enters the snapshot only once its checksum is right.
//
// Not @huggingface/hub's downloadFileToCacheDir: it neither resumes, nor checks checksums, nor reports progress,
// nor writes refs/<revision>; the hub's resolve protocol below is the one huggingface_hub (Python) speaks.
import { createHash, randomBytes, type Hash } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { writeFileAtomic } from './atomic-write'
import { PetError } from './errors'

/** Where and how resolveModel looks a hub name up: the revision, the cache, the endpoint, the token, offline mode. */
export interface HubOptions {
  /** branch, tag or commit hash (default 'main') */
  revision?: string
  /** the hub cache (default HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub) */
  cacheDir?: string
  /** the hub's URL (default HF_ENDPOINT, else https://huggingface.co) */
  endpoint?: string
  /** access token (default HF_TOKEN, else the file $HF_HOME/token that `huggingface-cli login` writes) */
  token?: string
  /** cache only, no network (default: HF_HUB_OFFLINE=1) */
  offline?: boolean
  /** bytes of each file as it downloads */
  onProgress?: (event: DownloadProgress) => void
  signal?: AbortSignal
}

/** resolveModel's progress: bytes of one file downloaded so far. */
export interface DownloadProgress {
  /** the file's path in the repository */
  file: string
  /** bytes on disk so far (a resumed download starts at its kept part) */
  done: number
  total: number
}

const commitRe = /^[0-9a-f]{40}$/
const nameRe = /^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/
const weightFiles = ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin'] as const
const tokenizerFiles = ['vocab.txt', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const

const envFlag = (v: string | undefined): boolean => v !== undefined && ['1', 'true', 'yes', 'on'].includes(v.toLowerCase())
const hfHome = (): string => process.env.HF_HOME ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface')

/** The hub cache folder, as huggingface_hub finds it. */
export function hubCacheDir (): string {
  return process.env.HF_HUB_CACHE ?? path.join(hfHome(), 'hub')
}

/**
 * How long the hub may stay silent, in ms: huggingface_hub's variables and default (10 s), HF_HUB_ETAG_TIMEOUT for
 * a file's metadata, HF_HUB_DOWNLOAD_TIMEOUT between a download's bytes. Without it a stalled server holds a request
 * for undici's 5 minutes.
 */
function silenceMs (name: 'HF_HUB_ETAG_TIMEOUT' | 'HF_HUB_DOWNLOAD_TIMEOUT'): number {
  const v = process.env[name]
  if (v === undefined || v === '') return 10_000
  const seconds = Number(v)
  if (!(Number.isFinite(seconds) && seconds > 0)) throw new PetError(`Expected a positive number of seconds for ${name} but received ${JSON.stringify(v)}`, 'EINVAL')
  return seconds * 1000
}

/** Aborts its request when `ms` pass without a kick (the response's headers, then each chunk of the body). */
class Silence {
  private readonly ctl = new AbortController()
  private timer: NodeJS.Timeout
  fired = false

  constructor (readonly ms: number, readonly variable: string) { this.timer = this.arm() }

  private arm (): NodeJS.Timeout {
    return setTimeout(() => { this.fired = true; this.ctl.abort() }, this.ms)
  }

  get signal (): AbortSignal { return this.ctl.signal }
  kick (): void { clearTimeout(this.timer); this.timer = this.arm() }
  stop (): void { clearTimeout(this.timer) }
  /** what a stalled request says: for how long, and which variable sets it */
  get said (): string { return `the hub sent nothing for ${this.ms / 1000} s (${this.variable})` }
}

/** Whether `s` could name a hub model (`org/name` or a bare legacy `name`) rather than a path. */
export function isHubName (s: string): boolean {
  return nameRe.test(s) && !s.includes('--') && !s.includes('..')
}

function tokenOf (o: HubOptions): string | undefined {
  if (o.token !== undefined) return o.token === '' ? undefined : o.token
  if (process.env.HF_TOKEN !== undefined && process.env.HF_TOKEN !== '') return process.env.HF_TOKEN
  try {
    const t = fs.readFileSync(process.env.HF_TOKEN_PATH ?? path.join(hfHome(), 'token'), 'utf8').trim()
    return t === '' ? undefined : t
  } catch {
    return undefined
  }
}

/**
 * The local folder of a model: `nameOrDir` itself when it is a folder; else the hub model of that name at
 * `revision`, from the cache when its snapshot holds config.json, the weights and a tokenizer, downloaded otherwise.
 */
export async function resolveModel (nameOrDir: string, options: HubOptions = {}): Promise<string> {
  const found = lookUp(nameOrDir, options)
  if (typeof found === 'string') return found
  if (options.offline ?? envFlag(process.env.HF_HUB_OFFLINE)) {
    throw new PetError(`model '${nameOrDir}' (revision ${found.revision}) is not in the HF cache ${found.cacheDir}, and HF_HUB_OFFLINE is set: ` +
      `no download (and no local folder ${path.resolve(nameOrDir)})`, 'EOFFLINE')
  }
  return await found.download()
}

/**
 * resolveModel without the network, synchronously: the folder itself, or the cached snapshot of a hub name at
 * `revision` (the same lookup); a name that is not cached is a PetError (ENOTCACHED) saying to call resolveModel()
 * first. `what` names the caller in that message.
 */
export function cachedModel (nameOrDir: string, options: Pick<HubOptions, 'revision' | 'cacheDir'> = {}, what = 'this call'): string {
  const found = lookUp(nameOrDir, options)
  if (typeof found === 'string') return found
  throw new PetError(`model '${nameOrDir}' (revision ${found.revision}) is not in the HF cache ${found.cacheDir}, and no local folder ` +
    `${path.resolve(nameOrDir)} exists: ${what} reads the cache only; download it first with resolveModel('${nameOrDir}')`, 'ENOTCACHED')
}

/** The folder itself, the cached snapshot of a hub name, or the repository to download it from. */
function lookUp (nameOrDir: string, options: HubOptions): string | HubRepo {
  const abs = path.resolve(nameOrDir)
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) return abs
  if (!isHubName(nameOrDir)) throw new PetError(`model directory not found: ${abs}`, 'ENOENT')
  const repo = new HubRepo(nameOrDir, abs, options)
  return repo.cachedSnapshot() ?? repo
}

/** A revision as a path under refs/ (a branch may hold "/": refs/pr/1); one that could leave it is a PetError. */
function checkRevision (revision: string): string {
  if (typeof revision !== 'string' || revision.split('/').some(s => s === '' || s === '.' || s === '..') || /[\\\0]/.test(revision)) {
    throw new PetError(`Expected a branch, tag or commit hash for revision but received ${JSON.stringify(revision)}`, 'EINVAL')
  }
  return revision
}

interface FileMeta {
  commit: string
  etag: string
  size: number
  url: string
}

class HubRepo {
  readonly revision: string
  readonly cacheDir: string
  readonly folder: string
  private readonly endpoint: string

  constructor (readonly name: string, private readonly localPath: string, private readonly o: HubOptions) {
    this.revision = checkRevision(o.revision ?? 'main')
    this.cacheDir = path.resolve(o.cacheDir ?? hubCacheDir())
    this.folder = path.join(this.cacheDir, `models--${name.replace('/', '--')}`)
    this.endpoint = (o.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '')
  }

  private tokenRead?: { value: string | undefined }
  /** read when first needed: a lookup in the cache needs none */
  private get token (): string | undefined {
    this.tokenRead ??= { value: tokenOf(this.o) }
    return this.tokenRead.value
  }

  /** the cached snapshot of the revision, when it holds a loadable model */
  cachedSnapshot (): string | undefined {
    let commit = this.revision
    if (!commitRe.test(commit)) {
      try { commit = fs.readFileSync(path.join(this.folder, 'refs', this.revision), 'utf8').trim() } catch { return undefined }
    }
    const dir = path.join(this.folder, 'snapshots', commit)
    return complete(dir) ? dir : undefined
  }

  private silencesRead?: Record<'HF_HUB_ETAG_TIMEOUT' | 'HF_HUB_DOWNLOAD_TIMEOUT', number>
  /** both read at once when a download starts (a lookup in the cache needs neither): a bad value is refused before any request */
  private get silences (): Record<'HF_HUB_ETAG_TIMEOUT' | 'HF_HUB_DOWNLOAD_TIMEOUT', number> {
    this.silencesRead ??= { HF_HUB_ETAG_TIMEOUT: silenceMs('HF_HUB_ETAG_TIMEOUT'), HF_HUB_DOWNLOAD_TIMEOUT: silenceMs('HF_HUB_DOWNLOAD_TIMEOUT') }
    return this.silencesRead
  }

  async download (): Promise<string> {
    void this.silences // read now: a bad value fails before the first request
    const config = await this.meta('config.json')
    if (config === null) throw this.notFound('it has no config.json')
    // every further file from the same commit, as the snapshot is one commit
    const commit = config.commit
    const snapshot = path.join(this.folder, 'snapshots', commit)
    await this.fetchFile('config.json', config)
    let weights = false
    for (const f of weightFiles) {
      const m = await this.meta(f, commit)
      if (m === null) continue
      await this.fetchFile(f, m)
      if (f === 'model.safetensors.index.json') {
        for (const shard of shardsOf(path.join(snapshot, f))) {
          const sm = await this.meta(shard, commit)
          if (sm === null) throw new PetError(`model '${this.name}': the shard ${shard} named in ${f} is not in the repository`, 'EMODEL')
          await this.fetchFile(shard, sm)
        }
      }
      weights = true
      break
    }
    if (!weights) throw new PetError(`model '${this.name}' has no weights (${weightFiles.join(', ')}) at revision ${this.revision}`, 'EMODEL')
    for (const f of tokenizerFiles) {
      const m = await this.meta(f, commit)
      if (m !== null) await this.fetchFile(f, m)
    }
    if (this.revision !== commit) writeFileAtomic(path.join(this.folder, 'refs', this.revision), commit)
    return snapshot
  }

  private url (file: string, revision: string): string {
    return `${this.endpoint}/${this.name}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`
  }

  private headers (url: string): Record<string, string> {
    // the token goes to the hub only, not to the storage a large file redirects to
    return this.token !== undefined && new URL(url).origin === new URL(this.endpoint).origin ? { Authorization: `Bearer ${this.token}` } : {}
  }

  /** fetch under a Silence (stopped here on failure; the caller stops it once it has read what it needs) */
  private async request (url: string, init: RequestInit, file: string, variable: 'HF_HUB_ETAG_TIMEOUT' | 'HF_HUB_DOWNLOAD_TIMEOUT'): Promise<{ res: Response, silence: Silence }> {
    const silence = new Silence(this.silences[variable], variable)
    try {
      const signal = this.o.signal !== undefined ? AbortSignal.any([this.o.signal, silence.signal]) : silence.signal
      const res = await fetch(url, { ...init, signal })
      silence.kick()
      return { res, silence }
    } catch (err) {
      silence.stop()
      if (this.o.signal?.aborted === true) throw new PetError(`download of ${this.name}/${file} was aborted`, 'EABORT', { cause: err })
      const why = (err as { cause?: { code?: string, message?: string } }).cause
      const detail = silence.fired ? `${silence.said} for ${file}` : `${why?.code ?? why?.message ?? (err as Error).message}`
      throw new PetError(`model '${this.name}': cannot reach the hub at ${this.endpoint} (${detail}); ` +
        `no local folder ${this.localPath} either (HF_HUB_OFFLINE=1 uses the cache only)`, 'ENET', { cause: err })
    }
  }

  /** HEAD of a file: its commit, checksum, size and download URL; null when the revision has no such file */
  private async meta (file: string, revision = this.revision): Promise<FileMeta | null> {
    let url = this.url(file, revision)
    for (let hops = 0; ; hops++) {
      const { res, silence } = await this.request(url, { method: 'HEAD', redirect: 'manual', headers: this.headers(url) }, file, 'HF_HUB_ETAG_TIMEOUT')
      silence.stop()
      const h = res.headers
      const location = h.get('location')
      // a relative redirect (a renamed repository) is followed; one to storage carries the file's metadata
      if (res.status >= 300 && res.status < 400 && location !== null && h.get('x-repo-commit') === null && hops < 5) {
        url = new URL(location, url).toString()
        continue
      }
      if (res.status === 404 && h.get('x-error-code') === 'EntryNotFound') return null
      if (!res.ok && !(res.status >= 300 && res.status < 400)) throw this.httpError(res, file)
      const commit = h.get('x-repo-commit')
      const etag = (h.get('x-linked-etag') ?? h.get('etag'))?.replace(/^W\//, '').replace(/"/g, '')
      const size = Number(h.get('x-linked-size') ?? h.get('content-length'))
      if (commit === null || etag === undefined || etag === '' || !Number.isFinite(size)) {
        throw new PetError(`model '${this.name}': the hub's answer for ${file} lacks X-Repo-Commit, ETag or the size (is ${this.endpoint} a Hugging Face hub?)`, 'ENET')
      }
      return { commit, etag, size, url: location !== null ? new URL(location, url).toString() : url }
    }
  }

  private notFound (detail: string): PetError {
    return new PetError(`model '${this.name}' not found on the hub ${this.endpoint} at revision ${this.revision} (${detail}), ` +
      `and no local folder ${this.localPath} exists either`, 'ENOENT')
  }

  private httpError (res: Response, file: string): PetError {
    const code = res.headers.get('x-error-code')
    const msg = res.headers.get('x-error-message')
    const said = msg !== null ? `: ${msg}` : ''
    if (res.status === 404 || code === 'RepoNotFound' || code === 'RevisionNotFound') {
      const detail = code === 'RevisionNotFound' ? 'no such revision' : `HTTP ${res.status}${said}`
      const hint = (res.status === 401 || res.status === 403) && this.token === undefined ? '; a private model needs HF_TOKEN' : ''
      return this.notFound(detail + hint)
    }
    if (res.status === 401 || res.status === 403) {
      const gated = code === 'GatedRepo' ? ' (a gated model: accept its terms on the hub with this account)' : ''
      return new PetError(`model '${this.name}': the hub refused access to ${file} (HTTP ${res.status}${said})${gated}; ` +
        (this.token === undefined ? 'set HF_TOKEN to a token with read access' : 'check HF_TOKEN: the token is wrong or lacks read access to it'), 'EAUTH')
    }
    return new PetError(`model '${this.name}': the hub answered HTTP ${res.status}${said} for ${file}`, 'ENET')
  }

  /**
   * the file into blobs/<etag> and its snapshot entry. The blob is fetched under a lock file
   * (.locks/models--org--name/<etag>.lock, where huggingface_hub keeps its own), so that processes resolving the same
   * model at once download each file once and never write one .incomplete together.
   */
  private async fetchFile (file: string, m: FileMeta): Promise<void> {
    const pointer = path.join(this.folder, 'snapshots', m.commit, file)
    if (fs.existsSync(pointer)) return
    const blob = path.join(this.folder, 'blobs', m.etag)
    if (!fs.existsSync(blob)) {
      const lock = await acquireLock(path.join(this.cacheDir, '.locks', path.basename(this.folder), `${m.etag}.lock`), this.o.signal,
        `download of ${this.name}/${file}`)
      try {
        // another process may have fetched it while this one waited
        if (!fs.existsSync(blob)) await this.fetchBlob(file, m, blob)
      } finally {
        lock.release()
      }
    }
    fs.mkdirSync(path.dirname(pointer), { recursive: true })
    const target = path.relative(path.dirname(pointer), blob)
    for (let tries = 0; ; tries++) {
      try {
        fs.symlinkSync(target, pointer)
        return
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        // another process linked it first; a dangling entry is replaced
        if (code === 'EEXIST') {
          if (fs.existsSync(pointer)) return
          if (tries < 1) { fs.rmSync(pointer, { force: true }); continue }
        }
        // no symlinks here (Windows without the privilege): a copy, put in place whole
        writeFileAtomic(pointer, fs.readFileSync(blob))
        return
      }
    }
  }

  /** blobs/<etag>, resuming a kept .incomplete, once its checksum is right; under the blob's lock */
  private async fetchBlob (file: string, m: FileMeta, blob: string): Promise<void> {
    fs.mkdirSync(path.dirname(blob), { recursive: true })
    const incomplete = `${blob}.incomplete`
    let start = fs.existsSync(incomplete) ? fs.statSync(incomplete).size : 0
    if (start > m.size) { fs.rmSync(incomplete); start = 0 }
    const report = (done: number) => this.o.onProgress?.({ file, done, total: m.size })
    if (start < m.size) {
      const headers = { ...this.headers(m.url), ...(start > 0 ? { Range: `bytes=${start}-` } : {}) }
      const { res, silence } = await this.request(m.url, { headers }, file, 'HF_HUB_DOWNLOAD_TIMEOUT')
      try {
        if (res.status === 416) report(m.size)
        else if (!res.ok) throw this.httpError(res, file)
        else {
          // a server that ignores the Range sends the whole file again
          if (res.status !== 206) start = 0
          await this.receive(res, file, incomplete, start, m, report, silence)
        }
      } finally {
        silence.stop()
      }
    } else report(m.size)
    const bad = await verify(incomplete, m)
    if (bad !== null) {
      fs.rmSync(incomplete, { force: true })
      throw new PetError(`model '${this.name}': ${file} failed its checksum (${bad}); the download was discarded, run again`, 'ECHECKSUM')
    }
    fs.renameSync(incomplete, blob)
  }

  private async receive (res: Response, file: string, incomplete: string, start: number, m: FileMeta, report: (done: number) => void, silence: Silence): Promise<void> {
    const out = fs.createWriteStream(incomplete, { flags: start > 0 ? 'a' : 'w' })
    let done = start
    try {
      if (res.body === null) throw new Error('no body')
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        silence.kick()
        if (!out.write(chunk)) await new Promise<void>(resolve => out.once('drain', () => resolve()))
        done += chunk.byteLength
        report(done)
      }
    } catch (err) {
      await new Promise<void>(resolve => out.end(() => resolve()))
      if (this.o.signal?.aborted === true) throw new PetError(`download of ${this.name} was aborted (kept for resuming: ${incomplete})`, 'EABORT', { cause: err })
      const lost = silence.fired ? `${silence.said} downloading` : 'the connection was lost downloading'
      throw new PetError(`model '${this.name}': ${lost} ${file} at byte ${fs.statSync(incomplete).size} of ${m.size}; ` +
        `the part is kept in ${incomplete} and the next run resumes it`, 'ENET', { cause: err })
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => err ? reject(err) : resolve()))
    if (done < m.size) {
      throw new PetError(`model '${this.name}': the connection closed after byte ${done} of ${m.size} of ${file}; the part is kept in ${incomplete} and the next run resumes it`, 'ENET')
    }
  }
}

/** A lock file not refreshed for this long is a crashed process's, and is broken; its holder refreshes it 4 times as often. */
const lockStaleMs = 60_000
const lockPollMs = 100

/**
 * An exclusive lock: the file created with O_EXCL ('wx'), holding a token of its own. A waiting process polls;
 * a lock whose time is older than lockStaleMs is broken (renamed aside first, so that of several waiters one breaks
 * it). Python's huggingface_hub locks the same file with flock, which this does not see: its leftover lock files are
 * taken as stale once old.
 */
async function acquireLock (file: string, signal: AbortSignal | undefined, what: string): Promise<{ release: () => void }> {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  const token = `${process.pid} ${os.hostname()} ${randomBytes(8).toString('hex')}\n`
  for (;;) {
    try {
      fs.writeFileSync(file, token, { flag: 'wx' })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new PetError(`${what}: cannot create the lock file ${file} (${(err as Error).message})`, 'EIO', { cause: err })
      }
    }
    breakIfStale(file)
    if (signal?.aborted === true) throw new PetError(`${what} was aborted while another process held ${file}`, 'EABORT')
    await new Promise(resolve => setTimeout(resolve, lockPollMs))
  }
  const timer = setInterval(() => {
    try { fs.utimesSync(file, new Date(), new Date()) } catch { /* broken by a waiter: release leaves it be */ }
  }, lockStaleMs / 4)
  timer.unref()
  return {
    release: () => {
      clearInterval(timer)
      let held = ''
      try { held = fs.readFileSync(file, 'utf8') } catch { return }
      // only its own: a lock broken as stale and taken by another process stays
      if (held === token) fs.rmSync(file, { force: true })
    }
  }
}

function breakIfStale (file: string): void {
  let mtime: number
  try { mtime = fs.statSync(file).mtimeMs } catch { return }
  if (Date.now() - mtime < lockStaleMs) return
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`
  try { fs.renameSync(file, aside) } catch { return }
  fs.rmSync(aside, { force: true })
}

/**
 * null when the file matches the hub's checksum, else what differs. A 64-hex ETag is an LFS file's sha256; a
 * 40-hex one a git blob's sha1 (of "blob <size>\0" + the bytes); any other (none seen on the hub) checks the size only.
 */
async function verify (file: string, m: FileMeta): Promise<string | null> {
  const size = fs.statSync(file).size
  if (size !== m.size) return `${size} bytes, the hub said ${m.size}`
  let hash: Hash | undefined
  if (/^[0-9a-f]{64}$/.test(m.etag)) hash = createHash('sha256')
  else if (commitRe.test(m.etag)) hash = createHash('sha1').update(`blob ${size}\0`)
  if (hash === undefined) return null
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer)
  const got = hash.digest('hex')
  return got === m.etag ? null : `${got.length === 64 ? 'sha256' : 'git sha1'} ${got}, the hub said ${m.etag}`
}

function shardsOf (indexFile: string): string[] {
  try {
    const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { weight_map?: Record<string, string> }
    return [...new Set(Object.values(index.weight_map ?? {}))]
  } catch (err) {
    throw new PetError(`${indexFile}: not a safetensors index (${(err as Error).message})`, 'EMODEL')
  }
}

/** config.json, the weights (all shards of an index) and a tokenizer */
function complete (dir: string): boolean {
  const has = (f: string) => fs.existsSync(path.join(dir, f))
  if (!has('config.json') || !(has('vocab.txt') || has('tokenizer.json'))) return false
  if (has('model.safetensors') || has('pytorch_model.bin')) return true
  if (!has('model.safetensors.index.json')) return false
  try {
    return shardsOf(path.join(dir, 'model.safetensors.index.json')).every(has)
  } catch {
    return false
  }
}
