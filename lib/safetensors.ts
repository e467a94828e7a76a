// Reading and writing small float32 safetensors files from TypeScript (adapters; the model itself goes
// through the native core).
import * as fs from 'node:fs'
import { PetError } from './errors'
import { writeFileAtomic } from './atomic-write'

export interface F32Tensor { shape: number[], data: Float32Array }

export function writeSafetensorsF32 (file: string, tensors: Record<string, F32Tensor>, metadata: Record<string, string> = { format: 'pt' }): void {
  const header: Record<string, unknown> = { __metadata__: metadata }
  const chunks: Buffer[] = []
  let offset = 0
  for (const name of Object.keys(tensors).sort()) {
    const t = tensors[name]
    if (t.shape.reduce((a, b) => a * b, 1) !== t.data.length) throw new PetError(`tensor ${name}: shape does not match its data`, 'EINVAL')
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes.length] }
    chunks.push(bytes)
    offset += bytes.length
  }
  let h = JSON.stringify(header)
  while (Buffer.byteLength(h) % 8 !== 0) h += ' '
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(h)))
  writeFileAtomic(file, Buffer.concat([len, Buffer.from(h), ...chunks]))
}

export function readSafetensorsF32 (file: string): Record<string, F32Tensor> {
  let buf: Buffer
  try { buf = fs.readFileSync(file) } catch (err) { throw new PetError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`, 'ENOENT') }
  const bad = (why: string) => new PetError(`${file}: corrupt safetensors file: ${why}`, 'EDATA')
  if (buf.length < 8) throw bad('too short')
  const n = Number(buf.readBigUInt64LE(0))
  if (n > buf.length - 8) throw bad('header length exceeds the file')
  // biome-ignore lint/suspicious/noExplicitAny: the JSON header, checked entry by entry below
  let header: Record<string, any>
  try { header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) } catch { throw bad('header is not JSON') }
  const out: Record<string, F32Tensor> = {}
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue
    if (h.dtype !== 'F32') throw bad(`tensor ${name} is ${h.dtype}, expected F32`)
    const [b, e] = h.data_offsets as [number, number]
    if (!(b <= e && 8 + n + e <= buf.length)) throw bad(`tensor ${name} runs past the end of the file`)
    const data = new Float32Array(new Uint8Array(buf.subarray(8 + n + b, 8 + n + e)).buffer)
    if (data.length !== (h.shape as number[]).reduce((x: number, y: number) => x * y, 1)) throw bad(`tensor ${name}: shape does not match its data`)
    out[name] = { shape: h.shape, data }
  }
  return out
}
