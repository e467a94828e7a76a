// Argument checks in one place, with one message shape:
//   "Expected positive integer for batchSize but received 1.5 of type number"
import { PetError } from './errors'

function describe (v: unknown): string {
  const t = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v
  let shown: string
  try { shown = typeof v === 'string' ? JSON.stringify(v) : String(v) } catch { shown = '?' }
  if (shown.length > 60) shown = shown.slice(0, 57) + '...'
  return `${shown} of type ${t}`
}

export function invalid (expected: string, name: string, value: unknown): PetError {
  return new PetError(`Expected ${expected} for ${name} but received ${describe(value)}`, 'EINVAL')
}

export function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export function integer (v: unknown, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? (min === 1 ? 'positive integer' : `integer >= ${min}`) : `integer in [${min}, ${max}]`
    throw invalid(range, name, v)
  }
  return v
}

export function number (v: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw invalid(min === -Infinity && max === Infinity ? 'finite number' : `number in [${min}, ${max}]`, name, v)
  }
  return v
}

export function string (v: unknown, name: string, { nonEmpty = true } = {}): string {
  if (typeof v !== 'string' || (nonEmpty && v.length === 0)) throw invalid(nonEmpty ? 'non-empty string' : 'string', name, v)
  return v
}

export function oneOf<T extends string> (v: unknown, name: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw invalid(`one of ${allowed.map(a => `'${a}'`).join(', ')}`, name, v)
  return v as T
}

export function boolean (v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw invalid('boolean', name, v)
  return v
}

/** Throws on option names that are not known: a typo must not be silently ignored. */
export function knownKeys (o: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new PetError(`Unknown option '${k}' for ${what} (known: ${allowed.join(', ')})`, 'EINVAL')
  }
}

/** Applies defaults, rejects unknown keys, and runs a checker per present key. */
export function options<T extends object> (input: unknown, what: string, defaults: T,
  check: { [K in keyof T]?: (v: unknown, name: string) => T[K] }): T {
  if (input === undefined) return { ...defaults }
  if (!isPlainObject(input)) throw invalid('options object', what, input)
  knownKeys(input, Object.keys(check), what)
  const out: T = { ...defaults }
  for (const key of Object.keys(check) as Array<keyof T>) {
    const v = input[key as string]
    if (v !== undefined) out[key] = check[key]!(v, String(key))
  }
  return out
}
