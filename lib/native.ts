// The only module that loads the addon (node-gyp-build: prebuilds/ or build/Release). Sets the intra-op
// thread count once: LibTorch's default is half the cores on small machines.
import * as os from 'node:os'
import * as path from 'node:path'
import type { NativeAddon } from '../bindings'
import { PetError } from './errors'

let addon: NativeAddon | undefined

export const packageRoot = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..')

export function native (): NativeAddon {
  if (addon) return addon
  // Before LibTorch's OpenMP runtime loads (it reads the variable once): idle OpenMP workers sleep instead of
  // spinning, where a spinning worker took cores from OpenBLAS's threads (MLM pretraining on 1,000 texts, 2 cores:
  // 70-80 s spinning, 53 s passive). A value the user set wins.
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE'
  // oneDNN keeps up to 1,024 primitives (one per GEMM shape, each with its packed weights); training and scoring
  // meet hundreds of shapes (every batch length, every masked-row count). 128 keeps the working set: bf16 PET
  // training, 6 epochs of the README's P1 run, peak RSS 1.39 -> 0.94 GB at the same speed (29.9 vs 28.6 s). Read
  // when oneDNN makes its first primitive; a value the user set wins.
  process.env.ONEDNN_PRIMITIVE_CACHE_CAPACITY ??= '128'
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    addon = require('node-gyp-build')(packageRoot) as NativeAddon
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err)
    throw new PetError(`could not load the pet-mlm native addon (${msg}). Possible fixes:\n` +
      '  - run `npm run build` in the package to compile it (needs LibTorch: apt-get install libtorch-dev)\n' +
      '  - check that LibTorch\'s libraries are on the loader path (LD_LIBRARY_PATH) when LIBTORCH was used', 'ENOADDON')
  }
  const fromEnv = Number(process.env.PET_MLM_THREADS)
  const threads = Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : (os.availableParallelism?.() ?? os.cpus().length)
  addon.setNumThreads(Math.max(1, threads))
  return addon
}
