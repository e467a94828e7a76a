#!/usr/bin/env node
// Finds LibTorch's CMake package (the folder holding TorchConfig.cmake), in this order:
//   1. the LIBTORCH environment variable (an unpacked LibTorch, or a folder holding TorchConfig.cmake)
//   2. Python torch: torch.utils.cmake_prefix_path of `python3` (or $PYTHON)
//   3. a system install (Debian/Ubuntu libtorch-dev, /usr/local, /opt/libtorch)
//   4. a LibTorch that scripts/download-libtorch.js unpacked into .libtorch/
// Run directly, it prints the folder or exits 1 with the list of places it looked.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const root = path.resolve(__dirname, '..')

function configDir (base) {
  const candidates = [base, path.join(base, 'Torch'), path.join(base, 'share/cmake/Torch'), path.join(base, 'lib/cmake/Torch')]
  return candidates.find(d => fs.existsSync(path.join(d, 'TorchConfig.cmake')))
}

function fromPython (tried) {
  const pythons = process.env.PYTHON ? [process.env.PYTHON] : ['python3', 'python']
  for (const py of pythons) {
    const r = spawnSync(py, ['-c', 'import torch; print(torch.utils.cmake_prefix_path)'], { encoding: 'utf8', timeout: 60000 })
    tried.push(`python torch (${py}): ${r.status === 0 ? r.stdout.trim() : 'not importable'}`)
    if (r.status === 0) {
      const dir = configDir(r.stdout.trim())
      if (dir) return dir
    }
  }
  return undefined
}

function systemDirs () {
  const dirs = ['/usr/share/cmake/Torch', '/usr/local/share/cmake/Torch', '/usr/local/lib/cmake/Torch', '/opt/libtorch/share/cmake/Torch', '/usr/lib/cmake/Torch']
  try {
    for (const d of fs.readdirSync('/usr/lib')) {
      if (/-linux-gnu/.test(d)) dirs.unshift(path.join('/usr/lib', d, 'cmake/Torch'))
    }
  } catch {}
  return dirs
}

/** @returns {{ dir?: string, source?: string, tried: string[] }} */
function findLibtorch () {
  const tried = []
  if (process.env.LIBTORCH) {
    const dir = configDir(path.resolve(process.env.LIBTORCH))
    tried.push(`LIBTORCH=${process.env.LIBTORCH}`)
    // An explicit choice that does not work is an error, not a reason to pick another LibTorch silently.
    if (!dir) return { tried, error: `LIBTORCH=${process.env.LIBTORCH} holds no TorchConfig.cmake (expected share/cmake/Torch inside it)` }
    return { dir, source: 'LIBTORCH', tried }
  }
  const py = fromPython(tried)
  if (py) return { dir: py, source: 'python torch', tried }
  for (const d of systemDirs()) {
    tried.push(d)
    if (fs.existsSync(path.join(d, 'TorchConfig.cmake'))) return { dir: d, source: 'system', tried }
  }
  const local = configDir(path.join(root, '.libtorch', 'libtorch'))
  tried.push(path.join(root, '.libtorch', 'libtorch'))
  if (local) return { dir: local, source: 'downloaded', tried }
  return { tried }
}

module.exports = { findLibtorch }

if (require.main === module) {
  const r = findLibtorch()
  if (r.dir) {
    console.log(r.dir)
  } else {
    console.error(r.error || 'LibTorch not found. Looked in:\n  ' + r.tried.join('\n  '))
    process.exit(1)
  }
}
