// The machine and the conditions a benchmark ran under, for its report.
import * as fs from 'node:fs'
import * as os from 'node:os'
import { systemInfo } from '../advanced'

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
  /** the oneDNN our CPU inference calls directly ('' when the build cannot: ATen's ops) */
  onednn: string
  /** instruction-set extensions that matter for GEMMs, from /proc/cpuinfo (empty where it cannot be read) */
  isa: string[]
  /** thread-related environment variables as set for the run */
  env: Record<string, string>
}

export function machineInfo (): MachineInfo {
  const cpus = os.cpus()
  const sys = systemInfo()
  const env: Record<string, string> = {}
  for (const k of ['PET_MLM_THREADS', 'OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'MKL_NUM_THREADS']) {
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
    onednn: sys.onednn,
    isa: cpuIsa(),
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

const isaFlags: Array<[string, string]> = [
  ['avx2', 'AVX2'], ['fma', 'FMA'], ['avx512f', 'AVX-512'], ['avx512_vnni', 'AVX-512 VNNI'], ['avx512_bf16', 'AVX-512 BF16'],
  ['avx_vnni', 'AVX-VNNI'], ['amx_bf16', 'AMX-BF16'], ['amx_int8', 'AMX-INT8']
]

/** GEMM-relevant ISA extensions the CPU reports (Linux /proc/cpuinfo flags). */
export function cpuIsa (cpuinfo?: string): string[] {
  let text = cpuinfo
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/cpuinfo', 'utf8')
    } catch {
      return []
    }
  }
  const m = text.match(/^flags\s*:\s*(.*)$/m)
  if (!m) return []
  const flags = new Set(m[1].trim().split(/\s+/))
  return isaFlags.filter(([f]) => flags.has(f)).map(([, name]) => name)
}

/** 1-minute load average, rounded. */
export function load1 (): number {
  return Math.round(os.loadavg()[0] * 100) / 100
}
