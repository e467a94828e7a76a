// Test-only safetensors reader/writer, to read the HF fixtures and to craft good and broken checkpoints.
import * as fs from 'node:fs'

export interface StTensor { dtype: string, shape: number[], data: Float32Array | BigInt64Array | Int32Array }

export function readSafetensors (file: string): Map<string, StTensor> {
  const buf = fs.readFileSync(file)
  const n = Number(buf.readBigUInt64LE(0))
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, any>
  const out = new Map<string, StTensor>()
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue
    const [b, e] = h.data_offsets as [number, number]
    const bytes = buf.subarray(8 + n + b, 8 + n + e)
    const copy = new Uint8Array(bytes).buffer // aligned copy
    const data = h.dtype === 'F32' ? new Float32Array(copy) : h.dtype === 'I64' ? new BigInt64Array(copy) : new Int32Array(copy)
    out.set(name, { dtype: h.dtype, shape: h.shape, data })
  }
  return out
}

export function writeSafetensors (file: string, tensors: Map<string, StTensor>): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } }
  const chunks: Buffer[] = []
  let offset = 0
  for (const [name, t] of tensors) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] }
    chunks.push(bytes)
    offset += bytes.length
  }
  let h = JSON.stringify(header)
  while (h.length % 8 !== 0) h += ' '
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(h)))
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(h), ...chunks]))
}

export function toInt32 (t: StTensor): Int32Array {
  return t.data instanceof BigInt64Array ? Int32Array.from(t.data, x => Number(x)) : Int32Array.from(t.data as ArrayLike<number>)
}

export function maxAbsDiff (a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

export function maxAbs (a: ArrayLike<number>): number {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]))
  return m
}

/** Every (row, column) pair of a [B, T] batch, row-major: logitsAt() at every position. */
export function allPositions (B: number, T: number): Int32Array {
  const positions = new Int32Array(B * T * 2)
  for (let b = 0; b < B; b++) for (let i = 0; i < T; i++) { positions[(b * T + i) * 2] = b; positions[(b * T + i) * 2 + 1] = i }
  return positions
}
