// The machine and the conditions a benchmark ran under, for its report.
import * as fs from 'node:fs'
import * as os from 'node:os'
import { systemInfo } from '../system-info'

export interface MachineInfo {
  cpu: string
  cores: number
  mhz: number
  memoryGb: number
  platform: string
  node: string
  torch: string
  blas: string
  blasLibrary: string
  threads: number
  /** thread-related environment variables as set for the run */
  env: Record<string, string>
}

export function machineInfo (): MachineInfo {
  const cpus = os.cpus()
  const sys = systemInfo()
  const env: Record<string, string> = {}
  for (const k of ['PET_MLM_THREADS', 'PET_MLM_PLAIN_INFERENCE', 'OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'MKL_NUM_THREADS']) {
    if (process.env[k] !== undefined) env[k] = process.env[k]!
  }
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism?.() ?? cpus.length,
    mhz: cpus[0]?.speed || cpuinfoMhz(),
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    torch: sys.torch,
    blas: sys.blas,
    blasLibrary: sys.blasLibrary,
    threads: sys.threads,
    env
  }
}

/** os.cpus() reports 0 MHz on some virtual machines; /proc/cpuinfo still knows. */
function cpuinfoMhz (): number {
  try {
    const m = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^cpu MHz\s*:\s*([\d.]+)/m)
    return m ? Math.round(Number(m[1])) : 0
  } catch {
    return 0
  }
}

/** 1-minute load average, rounded. */
export function load1 (): number {
  return Math.round(os.loadavg()[0] * 100) / 100
}
