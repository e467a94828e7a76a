// lib/safetensors.ts, the TypeScript reader of adapters and fixtures: a round trip, and every malformed header an
// EDATA PetError naming the file (a null header or entry, a shape or offsets of the wrong kind, and a byte count that
// is not a whole number of elements had been TypeErrors and RangeErrors).
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { PetError } from '../../lib/errors'
import { readSafetensors, readSafetensorsF32, writeSafetensorsF32 } from '../../lib/safetensors'
import { tmpDir } from '../helpers/paths'

const dir = tmpDir()

/** A file with this header text and `dataBytes` zero bytes of data. */
function rawFile (name: string, header: string, dataBytes = 16): string {
  const h = Buffer.from(header)
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(h.length))
  const file = path.join(dir, name)
  fs.writeFileSync(file, Buffer.concat([len, h, Buffer.alloc(dataBytes)]))
  return file
}

function thrown (fn: () => unknown): unknown {
  try { fn() } catch (e) { return e }
  return undefined
}

t.test('round trip', async t => {
  const file = path.join(dir, 'ok.safetensors')
  writeSafetensorsF32(file, { a: { shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }, b: { shape: [0], data: new Float32Array(0) } })
  const back = readSafetensorsF32(file)
  t.same(back.a.shape, [2, 2])
  t.same([...back.a.data], [1, 2, 3, 4])
  t.same(back.b.shape, [0])
  t.equal(back.b.data.length, 0)
})

t.test('malformed headers are EDATA errors naming the file', async t => {
  const cases: Array<[string, string, RegExp]> = [
    ['null', 'null', /header is not a JSON object/],
    ['array', '[1, 2]', /header is not a JSON object/],
    ['entry-null', '{"x": null}', /entry x is not an object/],
    ['dtype', '{"x": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}', /tensor x is F16, expected F32 or I64 or I32/],
    ['no-shape', '{"x": {"dtype": "F32", "data_offsets": [0, 4]}}', /tensor x has a bad shape undefined/],
    ['neg-dim', '{"x": {"dtype": "F32", "shape": [-1, -4], "data_offsets": [0, 16]}}', /tensor x has a bad shape \[-1,-4\]/],
    ['frac-dim', '{"x": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}', /tensor x has a bad shape \[1\.5\]/],
    ['offsets-str', '{"x": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}}', /tensor x has bad data_offsets "0-4"/],
    ['offsets-one', '{"x": {"dtype": "F32", "shape": [1], "data_offsets": [4]}}', /tensor x has bad data_offsets \[4\]/],
    ['past-end', '{"x": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}', /tensor x runs past the end of the file/],
    ['odd-bytes', '{"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 7]}}', /tensor x: shape does not match its data/],
    ['not-json', '{"x": ', /header is not JSON/]
  ]
  for (const [name, header, message] of cases) {
    const file = rawFile(`${name}.safetensors`, header)
    const e = thrown(() => readSafetensors(file))
    t.ok(e instanceof PetError, `${name}: a PetError`)
    t.match(e, { code: 'EDATA', message: message }, name)
    t.ok((e as Error).message.startsWith(`${file}: corrupt safetensors file: `), `${name}: names the file`)
  }
  const short = path.join(dir, 'short.safetensors')
  fs.writeFileSync(short, Buffer.from([1, 2, 3]))
  t.throws(() => readSafetensors(short), /corrupt safetensors file: too short/)
  t.match(thrown(() => readSafetensors(path.join(dir, 'absent.safetensors'))), { code: 'ENOENT' })
})
