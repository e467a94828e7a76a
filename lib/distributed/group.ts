// The process group of a distributed run: joined once per process (TCPStore rendezvous, then Gloo), used by every
// training run of the process in turn.
import { nativeError, PetError } from '../errors'
import { native } from '../native'
import { optionTable } from '../options'
import { distEnv } from './env'

export interface DistGroup {
  rank: number
  worldSize: number
  /** all ranks reach this point (or a PetError after the timeout) */
  barrier: () => Promise<void>
  /** the element-wise sum of every rank's values */
  allReduceSum: (values: Float64Array) => Promise<Float64Array>
}

let joined: Promise<DistGroup> | undefined

/** seconds a worker waits for the others unless told (the option table's distTimeout) */
export const defaultDistTimeout = optionTable.distTimeout.default as number

/**
 * The group when this process is a worker of a distributed run (RANK, WORLD_SIZE, …), else undefined. The first
 * call joins it with `timeoutSeconds`; later calls (scoring after training, the next ensemble member) get the same.
 */
export async function joinGroup (timeoutSeconds = defaultDistTimeout): Promise<DistGroup | undefined> {
  const e = distEnv()
  if (e === undefined) return undefined
  joined ??= (async () => {
    const addon = native()
    const info = addon.distInfo()
    if (!info.available) throw new PetError(info.reason, 'ENODIST')
    try {
      await addon.distInit({ rank: e.rank, worldSize: e.worldSize, masterAddr: e.masterAddr, masterPort: e.masterPort, timeoutMs: Math.round(timeoutSeconds * 1000) })
    } catch (err) {
      throw new PetError(`distributed run: ${(err as Error).message}`, 'EDIST', { cause: err })
    }
    return {
      rank: e.rank,
      worldSize: e.worldSize,
      barrier: async () => {
        try { await addon.distBarrier() } catch (err) { throw nativeError(err) }
      },
      allReduceSum: async (values: Float64Array) => {
        try { return await addon.distAllReduceSum(values) } catch (err) { throw nativeError(err) }
      }
    }
  })()
  try {
    return await joined
  } catch (err) {
    joined = undefined
    throw err
  }
}

/** Rank r's contiguous share of n items: [floor(r n / W), floor((r + 1) n / W)). */
export function shareOf<T> (items: readonly T[], rank: number, worldSize: number): T[] {
  const n = items.length
  return items.slice(Math.floor(rank * n / worldSize), Math.floor((rank + 1) * n / worldSize))
}
