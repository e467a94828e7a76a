import { createHash } from 'node:crypto'
import type { MaskedLM } from '../../lib/model'

/** sha256 of every tensor's bytes, by name. */
export function hashTensors (model: MaskedLM): Map<string, string> {
  const out = new Map<string, string>()
  for (const name of model.tensorNames()) {
    const t = model.getTensor(name)
    out.set(name, createHash('sha256').update(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)).digest('hex'))
  }
  return out
}

export function rowHashes (data: Float32Array, width: number): string[] {
  const rows: string[] = []
  for (let r = 0; r * width < data.length; r++) {
    const row = data.subarray(r * width, (r + 1) * width)
    rows.push(createHash('sha1').update(Buffer.from(row.buffer, row.byteOffset, row.byteLength)).digest('hex'))
  }
  return rows
}
