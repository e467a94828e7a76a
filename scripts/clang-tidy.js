#!/usr/bin/env node
// npm run lint:tidy: clang-tidy's checks (.clang-tidy) over the C++ sources of native/core and native/addon. Any finding
// fails. The sources are read as one unit (a generated file that #includes them all, with the union of their compile
// flags from the build's compile_commands.json): parsing LibTorch's headers once instead of 26 times takes this from
// about 9 minutes to 1 on two cores. So names in anonymous namespaces must differ across those files.
//   node scripts/clang-tidy.js [build dir]   (default: build)
//   env CLANG_TIDY=clang-tidy-14   the binary
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const root = path.resolve(__dirname, '..')
const buildDir = path.resolve(root, process.argv[2] ?? 'build')
const db = path.join(buildDir, 'compile_commands.json')
if (!fs.existsSync(db)) {
  console.error(`lint:tidy: ${path.relative(root, db)} is missing: configure the build first (npm run build, or ` +
    'PET_MLM_BUILD_TESTS=1 npm ci; CMakeLists.txt exports the compile commands)')
  process.exit(2)
}
const entries = new Map(JSON.parse(fs.readFileSync(db, 'utf8')).map(e => [path.resolve(e.directory, e.file), e]))
const files = spawnSync('git', ['ls-files', 'native/core/*.cc', 'native/addon/*.cc'], { cwd: root, encoding: 'utf8' })
  .stdout.split('\n').filter(Boolean).map(f => path.resolve(root, f))
const missing = files.filter(f => !entries.has(f))
if (files.length === 0 || missing.length > 0) {
  // The addon's sources are compiled only when cmake-js configured the build (CMAKE_JS_VERSION).
  console.error(`lint:tidy: not in ${path.relative(root, db)}: ${missing.map(f => path.relative(root, f)).join(', ') || 'any source'}`)
  process.exit(2)
}

// The union of the files' flags, less the compiler, the output and the input: the defines and include paths of
// petcore and of the addon differ (PET_ONEDNN, node-addon-api's headers), and the unit needs both.
const flags = []
for (const f of files) {
  const e = entries.get(f)
  const argv = e.arguments ?? e.command.match(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g).map(a => a.replace(/^(["'])(.*)\1$/, '$2'))
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === '-o' || argv[i] === '-c') { i++; continue }
    if (argv[i] === '-isystem') { flags.includes(`-isystem${argv[i + 1]}`) || flags.push(`-isystem${argv[i + 1]}`); i++; continue }
    if (!flags.includes(argv[i])) flags.push(argv[i])
  }
}

const unit = path.join(buildDir, 'tidy-unit.cc')
fs.writeFileSync(unit, `// Written by scripts/clang-tidy.js: every source of native/core and native/addon, read as one unit.\n${
  files.map(f => `#include "${f}"\n`).join('')}`)

const tidy = process.env.CLANG_TIDY || 'clang-tidy'
const t0 = Date.now()
// The unit's own #include of .cc files is the point of it, not a finding.
const r = spawnSync(tidy, ['--quiet', '--checks=-bugprone-suspicious-include', unit, '--', ...flags], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 })
if (r.error) {
  console.error(`lint:tidy: cannot run ${tidy} (${r.error.message}); Debian: apt-get install clang-tidy`)
  process.exit(2)
}
// clang-tidy's own chatter ("N warnings generated", the suppressed counts) is not a finding.
const chatter = /^\d+ warnings? (and \d+ errors? )?generated\.$|^Suppressed \d+ warnings|^Use -header-filter|^\d+ warnings? treated as errors?$/
const findings = `${r.stdout}${r.stderr}`.split('\n').filter(l => !chatter.test(l)).join('\n').trim()
if (findings) console.log(findings.replaceAll(`${root}/`, ''))
if (/redefinition of|conflicting declaration|is ambiguous/.test(findings)) {
  console.log('lint:tidy: the sources are read as one unit, so names in anonymous namespaces must differ across files')
}
const secs = ((Date.now() - t0) / 1000).toFixed(0)
console.log(`lint:tidy: ${files.length} files as one unit, ${secs} s: ${r.status === 0 ? 'clean' : 'findings'}`)
process.exit(r.status === 0 ? 0 : 1)
