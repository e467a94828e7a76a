// What the native core runs on: LibTorch version, threads, which BLAS the process mapped, CUDA, oneDNN.
import * as fs from 'node:fs'
import { native } from './native'

/** What the native core runs on (what `pet info` prints). */
export interface SystemInfo {
  torch: string
  threads: number
  /** the BLAS shared library mapped into this process ('openblas', 'mkl', 'reference' or 'unknown') */
  blas: string
  blasLibrary: string
  cuda: boolean
  /** data-parallel training: 'gloo' (c10d with Gloo compiled in), else why not */
  distributed: string
  /** the oneDNN that CPU inference's layer steps call directly ('' when this build cannot: ATen's ops) */
  onednn: string
}

/** LibTorch's version, the intra-op threads, the BLAS this process mapped, CUDA, c10d and oneDNN availability. */
export function systemInfo (): SystemInfo {
  const n = native()
  let maps = ''
  try { maps = fs.readFileSync('/proc/self/maps', 'utf8') } catch {}
  const libs = [...new Set(maps.split('\n').map(l => l.split(/\s+/)[5] ?? '').filter(p => /(blas|mkl_|lapack)/i.test(p)))]
  const blasLibrary = libs.find(l => /openblas/i.test(l)) ?? libs.find(l => /mkl/i.test(l)) ?? libs.find(l => /libblas/.test(l)) ?? ''
  const blas = /openblas/i.test(blasLibrary) ? 'openblas' : /mkl/i.test(blasLibrary) ? 'mkl'
    : /libblas/.test(blasLibrary) ? (fs.existsSync(blasLibrary) && /openblas/.test(fs.realpathSync(blasLibrary)) ? 'openblas' : 'reference')
      : /MKL|OpenBLAS/.test(n.configInfo) ? n.configInfo.match(/MKL|OpenBLAS/)![0].toLowerCase() : 'unknown'
  const dist = n.distInfo()
  return { torch: n.torchVersion, threads: n.getNumThreads(), blas, blasLibrary, cuda: n.cudaAvailable(), distributed: dist.available ? 'gloo' : dist.reason, onednn: n.onednnVersion }
}
