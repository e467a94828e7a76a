// The one safetensors reader and writer on the TypeScript side, for small files: P-tuning adapters (float32), and in
// the tests the HF reference fixtures (float32 values, int64 ids) and checkpoints crafted from a model's. The model
// itself goes through the native core's own reader.
import * as fs from 'node:fs'
import { PetError } from './errors'
import { writeFileAtomic } from './atomic-write'

/** The dtypes read and written here. */
export const safetensorsDtypes = ['F32', 'I64', 'I32'] as const
export type SafetensorsDtype = typeof safetensorsDtypes[number]

/** One tensor of a safetensors file: its dtype, its shape and its values (row-major). */
export interface SafetensorsTensor { dtype: SafetensorsDtype, shape: number[], data: Float32Array | BigInt64Array | Int32Array }

/** A float32 tensor (what an adapter holds). */
export interface F32Tensor { shape: number[], data: Float32Array }

const elementBytes: Record<SafetensorsDtype, number> = { F32: 4, I64: 8, I32: 4 }

const arrayOf: Record<SafetensorsDtype, (b: ArrayBuffer) => SafetensorsTensor['data']> = {
  F32: b => new Float32Array(b),
  I64: b => new BigInt64Array(b),
  I32: b => new Int32Array(b)
}

/** Writes `tensors` (in name order) with `metadata`; the file is replaced atomically. */
export function writeSafetensors (file: string, tensors: ReadonlyMap<string, SafetensorsTensor>, metadata: Record<string, string> = { format: 'pt' }): void {
  const header: Record<string, unknown> = { __metadata__: metadata }
  const chunks: Buffer[] = []
  let offset = 0
  for (const name of [...tensors.keys()].sort()) {
    const t = tensors.get(name)!
    if (!(safetensorsDtypes as readonly string[]).includes(t.dtype)) throw new PetError(`tensor ${name}: dtype ${t.dtype} is not one of ${safetensorsDtypes.join(', ')}`, 'EINVAL')
    if (t.shape.reduce((a, b) => a * b, 1) !== t.data.length) throw new PetError(`tensor ${name}: shape does not match its data`, 'EINVAL')
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] }
    chunks.push(bytes)
    offset += bytes.length
  }
  let h = JSON.stringify(header)
  while (Buffer.byteLength(h) % 8 !== 0) h += ' '
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(h)))
  writeFileAtomic(file, Buffer.concat([len, Buffer.from(h), ...chunks]))
}

/** Every tensor of `file`, by name; a tensor of a dtype not in `expected` (default: all of safetensorsDtypes) is an EDATA PetError. */
export function readSafetensors (file: string, expected: readonly SafetensorsDtype[] = safetensorsDtypes): Map<string, SafetensorsTensor> {
  let buf: Buffer
  try { buf = fs.readFileSync(file) } catch (err) { throw new PetError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`, 'ENOENT') }
  const bad = (why: string) => new PetError(`${file}: corrupt safetensors file: ${why}`, 'EDATA')
  if (buf.length < 8) throw bad('too short')
  const n = Number(buf.readBigUInt64LE(0))
  if (n > buf.length - 8) throw bad('header length exceeds the file')
  // biome-ignore lint/suspicious/noExplicitAny: the JSON header, checked entry by entry below
  let header: Record<string, any>
  try { header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) } catch { throw bad('header is not JSON') }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw bad('header is not a JSON object')
  const counts = (v: unknown, length?: number): v is number[] =>
    Array.isArray(v) && (length === undefined || v.length === length) && v.every(x => Number.isSafeInteger(x) && x >= 0)
  const out = new Map<string, SafetensorsTensor>()
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue
    if (h === null || typeof h !== 'object') throw bad(`entry ${name} is not an object`)
    if (!(expected as readonly string[]).includes(h.dtype)) throw bad(`tensor ${name} is ${h.dtype}, expected ${expected.join(' or ')}`)
    const dtype = h.dtype as SafetensorsDtype
    if (!counts(h.shape)) throw bad(`tensor ${name} has a bad shape ${JSON.stringify(h.shape)}`)
    if (!counts(h.data_offsets, 2)) throw bad(`tensor ${name} has bad data_offsets ${JSON.stringify(h.data_offsets)}`)
    const [b, e] = h.data_offsets
    if (!(b <= e && 8 + n + e <= buf.length)) throw bad(`tensor ${name} runs past the end of the file`)
    if (e - b !== h.shape.reduce((x: number, y: number) => x * y, 1) * elementBytes[dtype]) throw bad(`tensor ${name}: shape does not match its data`)
    // an aligned copy: the data need not start at a multiple of the element size within the file
    const data = arrayOf[dtype](new Uint8Array(buf.subarray(8 + n + b, 8 + n + e)).buffer)
    out.set(name, { dtype, shape: h.shape, data })
  }
  return out
}

/** writeSafetensors for float32 tensors only. */
export function writeSafetensorsF32 (file: string, tensors: Record<string, F32Tensor>, metadata: Record<string, string> = { format: 'pt' }): void {
  writeSafetensors(file, new Map(Object.entries(tensors).map(([name, t]) => [name, { dtype: 'F32', ...t }])), metadata)
}

/** readSafetensors for a file of float32 tensors only (any other dtype is an EDATA PetError). */
export function readSafetensorsF32 (file: string): Record<string, F32Tensor> {
  return Object.fromEntries([...readSafetensors(file, ['F32'])].map(([name, t]) => [name, { shape: t.shape, data: t.data as Float32Array }]))
}
