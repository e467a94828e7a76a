// The native default seed (kDefaultSeed, native/core/train/trainer.h: training and a new classifier head where the
// caller passes none) must be the options table's `seed` default, the user-facing one: with no seed, the same head
// and the same prompt encoder come out as with the table's seed (and another seed gives others: the seed is used).
import t from 'tap'
import { createHash } from 'node:crypto'
import { MaskedLM } from '../../lib/model'
import { optionTable } from '../../lib/options'
import { tinyBertDir } from '../helpers/paths'

const tableSeed = optionTable.seed.default as number
const rows = Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8])

/** One digest of the tensors' bits, in name order (tap's deep comparison of long float arrays is slow). */
function digest (tensors: Record<string, { data: Float32Array }>): string {
  const h = createHash('sha256')
  for (const k of Object.keys(tensors).sort()) h.update(k).update(Buffer.from(tensors[k].data.buffer, tensors[k].data.byteOffset, tensors[k].data.byteLength))
  return h.digest('hex')
}

async function withModel<T> (dir: string, fn: (m: MaskedLM) => T): Promise<T> {
  const m = await MaskedLM.load(dir)
  try {
    return fn(m)
  } finally {
    m.dispose()
  }
}

t.test('addClassifier without a seed = with the options table default', async t => {
  const dir = tinyBertDir()
  const head = (seed?: number) => withModel(dir, m => {
    m.addClassifier(2, seed)
    return digest({ 'classifier.weight': m.getTensor('classifier.weight') })
  })
  const none = await head()
  t.equal(none, await head(tableSeed), `no seed: the head of seed ${tableSeed}`)
  t.not(none, await head(tableSeed + 1), 'another seed: another head')
})

t.test('setTrainable without a seed = with the options table default (prompt encoder initialisation)', async t => {
  const dir = tinyBertDir()
  const encoder = (seed?: number) => withModel(dir, m => {
    m.setTrainable({ kind: 'rows', rows, encoder: 'lstm' }, { lr: 1e-3, ...(seed === undefined ? {} : { seed }) })
    const tensors = m.promptEncoderTensors()
    t.ok(Object.keys(tensors).length > 0, 'the prompt encoder has tensors')
    return digest(tensors)
  })
  const none = await encoder()
  t.equal(none, await encoder(tableSeed), `no seed: the prompt encoder of seed ${tableSeed}`)
  t.not(none, await encoder(tableSeed + 1), 'another seed: another prompt encoder')
})
