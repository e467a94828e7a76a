// A worker of `nproc`: receives the workflow and its options from the launcher (lib/dist/launch.ts), runs it with
// RANK/WORLD_SIZE/… from its environment, and reports back: progress (rank 0), the result or the error.
import { PetError } from '../errors'
import type { ProgressEvent } from '../progress'
import { distill } from '../workflows/distill'
import { ensemble } from '../workflows/ensemble'
import { finetune } from '../workflows/finetune'
import { ipet } from '../workflows/ipet'
import { predict } from '../workflows/predict'
import { pretrain } from '../workflows/pretrain'
import { ptune } from '../workflows/ptune'
import { train } from '../workflows/train'
import { zeroShot } from '../workflows/zero-shot'
import type { FromWorker, ToWorker } from './launch'

// biome-ignore lint/suspicious/noExplicitAny: options arrive over IPC for whichever workflow is named
const workflows: Record<string, (o: any) => Promise<unknown>> = { train, finetune, pretrain, ptune, ensemble, ipet, distill, zeroShot, predict }
const controller = new AbortController()
const send = (m: FromWorker) => new Promise<void>(resolve => {
  try { process.send!(m, () => resolve()) } catch { resolve() }  // the launcher is gone: nothing to tell
})

// Ctrl-C reaches the whole process group: the launcher decides, and tells every worker to stop at the same step.
process.on('SIGINT', () => {})
process.on('disconnect', () => controller.abort())

process.on('message', (m: ToWorker) => {
  if (m.type === 'abort') { controller.abort(); return }
  if (m.type !== 'run') return
  const run = workflows[m.workflow]
  const rank0 = process.env.RANK === '0'
  void (async () => {
    try {
      if (run === undefined) throw new PetError(`unknown workflow '${m.workflow}' for a distributed worker`, 'EINVAL')
      const value = await run({
        ...m.options,
        signal: controller.signal,
        ...(rank0 ? { onProgress: (event: ProgressEvent) => { void send({ type: 'progress', event }) } } : {})
      })
      await send({ type: 'result', value })
      process.exit(0)
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err))
      await send({ type: 'error', message: e.message, code: (e as PetError).code ?? 'EPET' })
      process.exit(1)
    }
  })()
})
