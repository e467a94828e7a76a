#!/usr/bin/env node
'use strict'
// docs/api.md from the typed public API: the exports of lib/index.ts ('pet-mlm') and lib/advanced.ts
// ('pet-mlm/advanced'), read from the TypeScript sources with the compiler API (no dist/ needed), each with its
// signature and the first paragraph of its JSDoc. `node scripts/api-docs.js` writes docs/api.md; test/17 checks that
// it is current. A development tool: it does not ship in the package.
const fs = require('node:fs')
const path = require('node:path')
const ts = require('typescript')

const repo = path.resolve(__dirname, '..')
const entries = [
  {
    specifier: 'pet-mlm', file: 'lib/index.ts',
    about: 'The package root: every workflow as a function with one options object, `Classifier` for what they write, ' +
      'their option and result types, progress events and `PetError`.'
  },
  {
    specifier: 'pet-mlm/advanced', file: 'lib/advanced.ts',
    about: 'The building blocks under the workflows, for custom pipelines: `MaskedLM` (typed methods over the native ' +
      'model), the tokenizers, `Pattern`, `Verbalizer`, the scoring rule, batching, data helpers, `systemInfo` and the ' +
      'native types. These follow the model internals and may change more often than the root.'
  }
]

const flags = ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.UseAliasDefinedOutsideCurrentScope

/** One line: runs of whitespace (a declaration written over several lines) become one space. */
const oneLine = s => s.replace(/\s+/g, ' ').trim()

/** The first paragraph of a symbol's JSDoc, on one line ('' where it has none). */
function summary (checker, symbol) {
  const text = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim()
  return oneLine(text.split(/\n\s*\n/)[0] ?? '')
}

/** The modifiers that keep a class member out of the docs: private, protected, or a #name. */
function hidden (decl) {
  const mods = ts.canHaveModifiers(decl) ? ts.getModifiers(decl) ?? [] : []
  if (mods.some(m => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword)) return true
  return decl.name !== undefined && ts.isPrivateIdentifier(decl.name)
}

const isStatic = decl => (ts.canHaveModifiers(decl) ? ts.getModifiers(decl) ?? [] : []).some(m => m.kind === ts.SyntaxKind.StaticKeyword)
const isReadonly = decl => (ts.canHaveModifiers(decl) ? ts.getModifiers(decl) ?? [] : []).some(m => m.kind === ts.SyntaxKind.ReadonlyKeyword)

/** A property's type as written where it is written (no `| undefined` added for `?`), else as the checker has it. */
function propertyType (checker, symbol, decl) {
  if (decl.type) return oneLine(decl.type.getText())
  return checker.typeToString(checker.getTypeOfSymbolAtLocation(symbol, decl), decl, flags)
}

function signatures (checker, decl) {
  const sig = checker.getSignatureFromDeclaration(decl)
  return sig ? checker.signatureToString(sig, decl, flags) : '()'
}

/** The members of a class or an interface: `- \`sig\` — summary` lines, in declaration order. */
function members (checker, symbol, isClass) {
  const lines = []
  const seen = new Set()
  const decls = (symbol.declarations ?? []).flatMap(d => d.members ? [...d.members] : [])
  for (const m of decls) {
    if (hidden(m) || ts.isIndexSignatureDeclaration(m) || ts.isClassStaticBlockDeclaration?.(m)) continue
    const ms = m.symbol
    const name = ts.isConstructorDeclaration(m) ? 'constructor' : ms?.getName()
    if (!name || name.startsWith('_')) continue
    // an overloaded function's implementation signature is not part of its type
    const overloaded = o => o !== m && !o.body && (ts.isConstructorDeclaration(m) ? ts.isConstructorDeclaration(o) : o.symbol === ms)
    if (isClass && m.body && decls.some(overloaded)) continue
    let text
    if (ts.isConstructorDeclaration(m)) {
      text = `new ${symbol.getName()}${signatures(checker, m).replace(/: [^:]*$/, '')}`
    } else if (ts.isMethodDeclaration(m) || ts.isMethodSignature(m)) {
      text = `${isStatic(m) ? 'static ' : ''}${name}${m.questionToken ? '?' : ''}${signatures(checker, m)}`
    } else if (ts.isGetAccessorDeclaration(m)) {
      if (seen.has(`get ${name}`)) continue
      seen.add(`get ${name}`)
      const hasSetter = decls.some(o => ts.isSetAccessorDeclaration(o) && o.symbol === ms)
      const type = m.type ? oneLine(m.type.getText()) : checker.typeToString(checker.getReturnTypeOfSignature(checker.getSignatureFromDeclaration(m)), m, flags)
      text = `${isStatic(m) ? 'static ' : ''}${hasSetter ? '' : 'readonly '}${name}: ${type}`
    } else if (ts.isSetAccessorDeclaration(m)) {
      continue
    } else if (ts.isPropertyDeclaration(m) || ts.isPropertySignature(m)) {
      text = `${isStatic(m) ? 'static ' : ''}${isReadonly(m) ? 'readonly ' : ''}${name}${m.questionToken ? '?' : ''}: ${propertyType(checker, ms, m)}`
    } else if (ts.isCallSignatureDeclaration(m)) {
      text = signatures(checker, m)
    } else {
      continue
    }
    const doc = ms ? summary(checker, ms) : ''
    if (seen.has(text)) continue
    seen.add(text)
    lines.push(`- \`${text}\`${doc ? ` — ${doc}` : ''}`)
  }
  return lines
}

/** `extends A, B` / `implements C` as written. */
function heritage (decl) {
  return (decl.heritageClauses ?? []).map(h => oneLine(h.getText())).join(' ')
}

/** The Markdown of one exported symbol (resolved through re-exports), under the name it is exported as. */
function describe (checker, exportName, symbol) {
  const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
  const decls = target.declarations ?? []
  const decl = decls[0]
  const parts = [`### ${exportName}`, '']
  const code = []
  let list = []
  if (!decl) return ''
  if (ts.isFunctionDeclaration(decl)) {
    const overloads = decls.filter(d => ts.isFunctionDeclaration(d))
    const withoutBody = overloads.filter(d => !d.body)
    for (const d of withoutBody.length ? withoutBody : overloads) code.push(`function ${exportName}${signatures(checker, d)}`)
  } else if (ts.isClassDeclaration(decl)) {
    code.push(oneLine(`class ${exportName} ${heritage(decl)}`))
    list = members(checker, target, true)
  } else if (ts.isInterfaceDeclaration(decl)) {
    code.push(oneLine(`interface ${exportName}${decl.typeParameters ? `<${decl.typeParameters.map(p => p.getText()).join(', ')}>` : ''} ${heritage(decl)}`))
    list = members(checker, target, false)
  } else if (ts.isTypeAliasDeclaration(decl)) {
    const params = decl.typeParameters ? `<${decl.typeParameters.map(p => p.getText()).join(', ')}>` : ''
    code.push(`type ${exportName}${params} = ${oneLine(decl.type.getText())}`)
  } else if (ts.isVariableDeclaration(decl)) {
    const type = decl.type ? oneLine(decl.type.getText()) : checker.typeToString(checker.getTypeOfSymbolAtLocation(target, decl), decl, flags)
    code.push(`const ${exportName}: ${type}`)
  } else {
    code.push(exportName)
  }
  parts.push('```ts', ...code, '```', '')
  const doc = summary(checker, target)
  if (doc) parts.push(doc, '')
  if (list.length) parts.push(...list, '')
  return parts.join('\n')
}

/** The exports (by entry point) that have no JSDoc: printed when docs/api.md is written, as a to-do. */
const undocumented = []

/** docs/api.md's text. */
function apiReference () {
  undocumented.length = 0
  const configFile = ts.readConfigFile(path.join(repo, 'tsconfig.json'), ts.sys.readFile)
  const config = ts.parseJsonConfigFileContent(configFile.config, ts.sys, repo)
  const roots = entries.map(e => path.join(repo, e.file))
  const program = ts.createProgram(roots, { ...config.options, noEmit: true })
  const checker = program.getTypeChecker()
  const out = [
    '# API',
    '',
    '<!-- generated by `node scripts/api-docs.js` from the declarations of lib/index.ts and lib/advanced.ts; ' +
      'test/17 checks that it is current: edit the JSDoc in lib/, not this file -->',
    '',
    'Every export of the package\'s two entry points, with its signature and the first paragraph of its JSDoc. The ' +
      'guide with examples is [library.md](library.md); the options of each workflow are the flags of ' +
      '[the CLI](cli.md) in camelCase.',
    ''
  ]
  for (const e of entries) out.push(`- [\`${e.specifier}\`](#${e.specifier.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')})`)
  out.push('')
  for (const e of entries) {
    const source = program.getSourceFile(path.join(repo, e.file))
    const moduleSymbol = checker.getSymbolAtLocation(source)
    // the entry file's order: its export lines are grouped by concern
    const order = new Map()
    for (const st of source.statements) {
      if (ts.isExportDeclaration(st) && st.exportClause && ts.isNamedExports(st.exportClause)) {
        for (const el of st.exportClause.elements) order.set(el.name.text, order.size)
      }
    }
    const exported = checker.getExportsOfModule(moduleSymbol)
      .sort((a, b) => (order.get(a.getName()) ?? Infinity) - (order.get(b.getName()) ?? Infinity))
    out.push(`## ${e.specifier}`, '', `\`import { … } from '${e.specifier}'\`. ${e.about}`, '')
    for (const s of exported) {
      out.push(describe(checker, s.getName(), s))
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s
      if (!summary(checker, target)) undocumented.push(`${e.specifier}: ${s.getName()}`)
    }
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n'
}

module.exports = { apiReference }

if (require.main === module) {
  const file = path.join(repo, 'docs', 'api.md')
  fs.writeFileSync(file, apiReference())
  console.log(`wrote ${path.relative(process.cwd(), file)}`)
  if (undocumented.length) console.log(`exports without JSDoc (${undocumented.length}): ${undocumented.join(', ')}`)
}
