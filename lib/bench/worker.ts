// A benchmark child process: receives one job over IPC, runs it, replies once and exits. Started by runJob().
import { fork } from 'node:child_process'
import { PetError } from '../errors'
import type { Job, JobResult, WorkerReply } from './jobs'

async function execute (job: Job): Promise<JobResult> {
  switch (job.kind) {
    case 'ours-score': return (await import('./ours')).runOursScore(job)
    case 'ours-train': return (await import('./ours')).runOursTrain(job)
    case 'peer-score': return (await import('./peer')).runPeerScore(job)
    case 'gemm-probe': return (await import('./ours')).runGemmProbe(job)
    case 'gpt-score': return (await import('./gpt')).runGptScore(job)
    case 'gpt-labels': return (await import('./gpt')).runGptLabels(job)
    case 'gpt-train': return (await import('./gpt')).runGptTrain(job)
  }
}

/** Runs the job in a fresh process (same Node flags, so TypeScript loaders carry over). */
export function runJob<R extends JobResult> (job: Job, env: NodeJS.ProcessEnv = process.env): Promise<R> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, [], { env: { ...env, PET_MLM_BENCH_WORKER: '1' }, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
    // the child's stdout goes to our stderr: stdout is reserved for the report (and the --json line)
    child.stdout?.on('data', (d: Buffer) => process.stderr.write(d))
    let reply: WorkerReply | undefined
    child.on('message', (m: WorkerReply) => { reply = m })
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      if (reply?.ok) resolve(reply.result as R)
      else if (reply) reject(new PetError(`${job.kind}: ${reply.message}`, reply.code ?? 'EBENCH'))
      else reject(new PetError(`${job.kind}: the benchmark process exited (${signal ?? `code ${code}`}) without a result`, 'EBENCH'))
    })
    child.send(job)
  })
}

if (process.env.PET_MLM_BENCH_WORKER === '1' && process.send) {
  process.once('message', (job: Job) => {
    execute(job).then(
      result => ({ ok: true, result }) as WorkerReply,
      err => ({ ok: false, message: err instanceof Error ? err.message : String(err), code: (err as PetError).code }) as WorkerReply
    ).then(reply => process.send!(reply, () => process.exit(0)))
  })
}
