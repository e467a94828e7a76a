#!/usr/bin/env node
// npm install hook: reuse a working build if there is one, else find LibTorch and compile the addon with
// cmake-js (offline: Node-API headers come from the node-api-headers package, see "binary" in package.json).
//   --force   rebuild even if build/Release/pet_mlm.node loads
//   env LIBTORCH=/path   use that LibTorch; PET_MLM_NO_DOWNLOAD=1 never try the online download
'use strict'
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { findLibtorch } = require('./find-libtorch')

const root = path.resolve(__dirname, '..')
const force = process.argv.includes('--force')

function loads () {
  try {
    require('node-gyp-build')(root)
    return true
  } catch {
    return false
  }
}

function fail (msg) {
  console.error('\npet-mlm: ' + msg + '\n')
  process.exit(1)
}

if (!force && fs.existsSync(path.join(root, 'build', 'Release', 'pet_mlm.node')) && loads()) {
  console.log('pet-mlm: native addon already built (npm run build to rebuild)')
  process.exit(0)
}

let found = findLibtorch()
if (!found.dir && !found.error && !process.env.PET_MLM_NO_DOWNLOAD) {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'download-libtorch.js')], { stdio: 'inherit' })
  if (r.status === 0) found = findLibtorch()
}
if (!found.dir) {
  fail((found.error || 'LibTorch was not found.') + '\nLooked in:\n  ' + found.tried.join('\n  ') +
    '\nInstall it with: apt-get install libtorch-dev libopenblas0-pthread (Debian/Ubuntu),\n' +
    'or set LIBTORCH to an unpacked LibTorch (its folder holds share/cmake/Torch).')
}
console.log(`pet-mlm: using LibTorch from ${found.source}: ${found.dir}`)

const cmakeJs = require.resolve('cmake-js/bin/cmake-js')
const args = [cmakeJs, 'build', `--CDTorch_DIR=${found.dir}`]
if (process.env.PET_MLM_CUDA) args.push('--CDPET_CUDA=ON')
// The Node-free C++ test executables (build/core_test, build/torch_bin_test), as CI builds them: a checkout only,
// since the package ships no native/tests/.
if (process.env.PET_MLM_BUILD_TESTS && fs.existsSync(path.join(root, 'native', 'tests'))) args.push('--CDPET_BUILD_TESTS=ON')
const env = { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: process.env.CMAKE_BUILD_PARALLEL_LEVEL || String(os.cpus().length) }
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env })
if (r.status !== 0) fail('native build failed (see the compiler output above)')
if (!loads()) fail('the addon was built but does not load')
console.log('pet-mlm: native addon built')
