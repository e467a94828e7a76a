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
