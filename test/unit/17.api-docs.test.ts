// docs/api.md is generated from the typed public API (the declarations of lib/index.ts and lib/advanced.ts, read
// with the TypeScript compiler API by scripts/api-docs.js) and must be current.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { repo } from '../helpers/paths'

const { apiReference } = require(path.join(repo, 'scripts', 'api-docs.js')) as { apiReference: () => string }

t.test('docs/api.md is current (regenerate: node scripts/api-docs.js)', async t => {
  const generated = apiReference()
  t.match(generated, /^## pet-mlm$/m, "a section for the package root, 'pet-mlm'")
  t.match(generated, /^## pet-mlm\/advanced$/m, "and one for 'pet-mlm/advanced'")
  t.match(generated, /^function train\(options: TrainOptions\): Promise<TrainResult>$/m, 'a workflow with its signature')
  t.match(generated, /^### Classifier\n\n```ts\nclass Classifier\n```/m, 'the Classifier class')
  t.match(generated, /^- `static load\(dir\?: string, options\?: Partial<LoadOptions>\): Promise<MaskedLM>` — Loads /m, "a building block's method with its JSDoc")
  const root = generated.slice(0, generated.indexOf('## pet-mlm/advanced'))
  t.notMatch(root, /^### MaskedLM$/m, 'MaskedLM is not under the root')
  const doc = fs.readFileSync(path.join(repo, 'docs', 'api.md'), 'utf8')
  t.equal(doc, generated, 'docs/api.md is current: run `node scripts/api-docs.js` to regenerate it from lib/')
})
