// --nproc N: N local workers, each a child process running the same workflow with RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR=127.0.0.1 and a free MASTER_PORT set, as torchrun would start them. The parent only relays: rank 0's
// progress events to onProgress, an abort to every worker (they stop together at the next step), rank 0's result
// back to the caller, and the first failure as a PetError.
import { fork, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { PetError } from '../errors'
import { packageRoot } from '../native'
import type { ProgressEvent } from '../progress'
import { distEnv } from './env'

export interface LaunchOptions {
  nproc: number
  /** seconds a worker waits for the others (passed on to them) */
  distTimeout: number
  /** every worker's run directory (they must agree on it), or an output file */
  out?: string
}

/** Messages between the launcher and a worker (lib/distributed/worker.ts). */
export type ToWorker = { type: 'run', workflow: string, options: Record<string, unknown> } | { type: 'abort' }
export type FromWorker =
  | { type: 'progress', event: ProgressEvent }
  | { type: 'result', value: unknown }
  | { type: 'error', message: string, code: string }

/** seconds the other workers get to report their own error once one has failed */
const killGraceSeconds = 10

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(port))
    })
  })
}

/** The launcher's view of its workers while they run. */
interface Workers {
  children: ChildProcess[]
  /** the errors the workers reported (or that starting one gave) */
  errors: Array<{ rank: number, message: string, code: string }>
  /** how each rank ended ('exit code 0', 'killed by SIGKILL'); undefined until it has */
  exits: Array<string | undefined>
  /** rank 0's result */
  result?: { value: unknown }
  /** the caller's signal asked for an abort */
  aborted: boolean
  /** set once a worker failed: kills those still running after the grace period */
  killTimer?: NodeJS.Timeout
}

/** Runs `workflow` (a name in lib/distributed/worker.ts) with `options` on o.nproc local workers; resolves with rank 0's result. */
export async function launchWorkers<R> (workflow: string, options: Record<string, unknown>, o: LaunchOptions): Promise<R> {
  if (distEnv() !== undefined) throw new PetError('nproc > 1 inside a distributed worker (WORLD_SIZE is set): use one or the other', 'EINVAL')
  const { signal, onProgress, nproc: _n, ...rest } = options
  const port = await freePort()
  // The machine's cores shared out, unless the caller chose: N workers x all cores would oversubscribe them.
  const cores = os.availableParallelism?.() ?? os.cpus().length
  const threads = rest.threads ?? Math.max(1, Math.floor(cores / o.nproc))
  const runOptions = { ...rest, threads, ...(o.out !== undefined ? { out: o.out } : {}) }
  // Always the compiled worker, also when the caller runs from the TypeScript sources (tests).
  const workerScript = path.join(packageRoot, 'dist', 'lib', 'distributed', 'worker.js')
  if (!fs.existsSync(workerScript)) throw new PetError(`${workerScript} is missing: run npm run build:ts`, 'ENOENT')
  const w: Workers = { children: [], errors: [], exits: new Array(o.nproc).fill(undefined), aborted: false }
  const onAbort = () => {
    w.aborted = true
    for (const c of w.children) if (c.connected) c.send({ type: 'abort' } satisfies ToWorker)
  }
  const sig = signal as AbortSignal | undefined

  const done = new Promise<void>(resolve => {
    let left = o.nproc
    const run: Extract<ToWorker, { type: 'run' }> = { type: 'run', workflow, options: runOptions }
    for (let rank = 0; rank < o.nproc; rank++) {
      startWorker(w, rank, { workerScript, port, o, run, onProgress: onProgress as ((e: ProgressEvent) => void) | undefined },
        () => { if (--left === 0) resolve() })
    }
  })
  if (sig?.aborted === true) onAbort()
  sig?.addEventListener('abort', onAbort)
  try {
    await done
  } finally {
    sig?.removeEventListener('abort', onAbort)
    if (w.killTimer !== undefined) clearTimeout(w.killTimer)
  }
  const failed = w.exits.some(e => e !== 'exit code 0')
  if (!failed && w.result !== undefined) return w.result.value as R
  throw launchError(w, o.nproc)
}

/**
 * Forks worker `rank` with the environment torchrun sets, relays what it sends (rank 0's progress and result, any
 * error), records how it ends, and sends it the run. A worker that fails starts the others' grace period.
 */
function startWorker (w: Workers, rank: number, spec: { workerScript: string, port: number, o: LaunchOptions, run: Extract<ToWorker, { type: 'run' }>,
  onProgress?: (e: ProgressEvent) => void }, onExit: () => void): void {
  const { o } = spec
  const child = fork(spec.workerScript, [], {
    env: {
      ...process.env,
      RANK: String(rank),
      WORLD_SIZE: String(o.nproc),
      LOCAL_RANK: String(rank),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(spec.port)
    },
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  w.children.push(child)
  child.on('message', (m: FromWorker) => {
    if (m.type === 'progress') spec.onProgress?.(m.event)
    else if (m.type === 'result' && rank === 0) w.result = { value: m.value }
    else if (m.type === 'error') w.errors.push({ rank, message: m.message, code: m.code })
  })
  child.on('error', err => w.errors.push({ rank, message: `cannot start worker: ${err.message}`, code: 'EDIST' }))
  child.on('exit', (code, sigName) => {
    w.exits[rank] = sigName !== null ? `killed by ${sigName}` : `exit code ${code}`
    if ((code !== 0 || sigName !== null) && w.killTimer === undefined) {
      // A worker failed: the run cannot go on. The others get a moment to report their own view (a peer's
      // death reaches them at once through Gloo), then are killed rather than left waiting for the timeout
      // (a worker that failed before the rendezvous would keep them there for the whole of it).
      w.killTimer = setTimeout(() => { for (const c of w.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL') },
        Math.min(o.distTimeout, killGraceSeconds) * 1000)
    }
    onExit()
  })
  child.send({ ...spec.run, options: { ...spec.run.options } } satisfies ToWorker)
}

/** The error of a failed run: a worker's own (rank 0's if it has one) first, then how each worker ended. */
function launchError (w: Workers, nproc: number): PetError {
  const first = w.errors.find(e => e.rank === 0) ?? w.errors[0]
  const ends = w.exits.map((e, r) => `rank ${r}: ${e ?? 'no exit'}`).join(', ')
  // An abort the caller asked for is an abort, however the workers ended (one that stopped first cuts the others'
  // all-reduce short).
  if (w.aborted || first?.code === 'EABORT') {
    const stopped = w.errors.find(e => e.code === 'EABORT')
    return new PetError(stopped?.message ?? `aborted (${ends})`, 'EABORT')
  }
  const msg = first !== undefined ? `${first.message} (rank ${first.rank}; ${ends})` : `a worker failed without a message (${ends})`
  return new PetError(`distributed run with ${nproc} workers failed: ${msg}`, first?.code ?? 'EDIST')
}
