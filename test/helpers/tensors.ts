// Comparing tensors: a fixture's ids as Int32Array, max abs differences, every position of a batch. The tests read
// the HF fixtures and craft checkpoints with the library's own safetensors reader and writer (lib/safetensors.ts).
import type { SafetensorsTensor } from '../../lib/safetensors'

export function toInt32 (t: SafetensorsTensor): Int32Array {
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
