#!/usr/bin/env node
// The online path: downloads the official prebuilt CPU LibTorch into .libtorch/ when no other LibTorch exists.
// Fails fast with a clear message where there is no network (connect and total timeouts), never hangs.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const https = require('node:https')
const { spawnSync } = require('node:child_process')

const VERSION = process.env.LIBTORCH_VERSION || '2.5.1'
const URL = process.env.LIBTORCH_URL ||
  `https://download.pytorch.org/libtorch/cpu/libtorch-cxx11-abi-shared-with-deps-${VERSION}%2Bcpu.zip`
const root = path.resolve(__dirname, '..')
const dest = path.join(root, '.libtorch')

function download (url, file, { connectMs = 15000, totalMs = 15 * 60000, redirects = 5 } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { timeout: connectMs }, res => {
      if (res.statusCode >= 300 && res.statusCode < 400 && res.headers.location && redirects > 0) {
        res.resume()
        return resolve(download(new globalThis.URL(res.headers.location, url).toString(), file, { connectMs, totalMs, redirects: redirects - 1 }))
      }
      if (res.statusCode !== 200) { res.resume(); return reject(new Error(`HTTP ${res.statusCode}`)) }
      const out = fs.createWriteStream(file)
      res.pipe(out)
      out.on('finish', () => out.close(() => resolve()))
      out.on('error', reject)
    })
    const total = setTimeout(() => req.destroy(new Error(`no complete download within ${totalMs / 1000} s`)), totalMs)
    req.on('timeout', () => req.destroy(new Error(`no answer within ${connectMs / 1000} s`)))
    req.on('error', err => { clearTimeout(total); reject(err) })
    req.on('close', () => clearTimeout(total))
  })
}

async function main () {
  fs.mkdirSync(dest, { recursive: true })
  const zip = path.join(dest, 'libtorch.zip')
  console.error(`pet-mlm: downloading LibTorch ${VERSION} (CPU) from ${URL}`)
  try {
    await download(URL, zip)
  } catch (err) {
    fs.rmSync(zip, { force: true })
    throw new Error(`could not download LibTorch (${err.message}). Without network access, install LibTorch ` +
      'another way: apt-get install libtorch-dev libopenblas0-pthread (Debian/Ubuntu), pip install torch, ' +
      'or unpack a LibTorch and set LIBTORCH=/path/to/libtorch')
  }
  const r = spawnSync('unzip', ['-q', '-o', zip, '-d', dest], { stdio: 'inherit' })
  fs.rmSync(zip, { force: true })
  if (r.status !== 0) throw new Error('could not unpack the LibTorch archive (is `unzip` installed?)')
  console.error(`pet-mlm: LibTorch unpacked in ${path.join(dest, 'libtorch')}`)
}

main().catch(err => { console.error('pet-mlm: ' + err.message); process.exit(1) })
