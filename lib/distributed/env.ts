// Which worker this process is, read as torchrun, Slurm scripts and Kubernetes' PyTorchJob set it: RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. No WORLD_SIZE (or 1): an ordinary single-process run.
import { PetError } from '../errors'

export interface DistEnv {
  rank: number
  worldSize: number
  localRank: number
  masterAddr: string
  masterPort: number
}

function intVar (env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback?: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback
    throw new PetError(`distributed run: WORLD_SIZE is set (${env.WORLD_SIZE}) but ${name} is not`, 'EDIST')
  }
  const v = Number(raw)
  if (!/^\d+$/.test(raw.trim()) || v < min || v > max) {
    throw new PetError(`distributed run: ${name} must be an integer in [${min}, ${max}], got '${raw}'`, 'EDIST')
  }
  return v
}

/** This process's place in a distributed run, or undefined outside one. */
export function distEnv (env: NodeJS.ProcessEnv = process.env): DistEnv | undefined {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === '') return undefined
  const worldSize = intVar(env, 'WORLD_SIZE', 1, 65536)
  if (worldSize === 1) return undefined
  const rank = intVar(env, 'RANK', 0, 65535)
  if (rank >= worldSize) throw new PetError(`distributed run: RANK ${rank} is not below WORLD_SIZE ${worldSize}`, 'EDIST')
  return {
    rank,
    worldSize,
    localRank: intVar(env, 'LOCAL_RANK', 0, 65535, rank),
    masterAddr: env.MASTER_ADDR !== undefined && env.MASTER_ADDR !== '' ? env.MASTER_ADDR : '127.0.0.1',
    masterPort: intVar(env, 'MASTER_PORT', 1, 65535, 29500)
  }
}

/** Whether this process writes the run's files (checkpoints, reports): rank 0, or a single-process run. */
export const isWriter = (): boolean => (distEnv()?.rank ?? 0) === 0
