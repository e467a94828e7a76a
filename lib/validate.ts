// Argument checks in one place, with one message shape:
//   "Expected positive integer for batchSize but received 1.5 of type number"
import { PetError } from './errors'
import { defaultOf, optionTable, type OptionSpec, type WorkflowSpec } from './options'

function describe (v: unknown): string {
  const t = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v
  let shown: string
  try { shown = typeof v === 'string' || (typeof v === 'object' && v !== null && !ArrayBuffer.isView(v)) ? JSON.stringify(v) ?? String(v) : String(v) } catch { shown = '?' }
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

/** A value checked against its row of the option table (options.ts). */
export function optionValue (spec: OptionSpec, v: unknown, name: string): unknown {
  switch (spec.kind) {
    case 'integer': return integer(v, name, spec.min ?? 0, spec.max)
    case 'number': {
      const x = number(v, name, spec.min, spec.max)
      if (spec.above === true && x <= (spec.min ?? -Infinity)) throw invalid(`number > ${spec.min} and <= ${spec.max}`, name, v)
      return x
    }
    case 'string': return string(v, name)
    case 'boolean': return boolean(v, name)
    case 'enum': return oneOf(v, name, spec.values ?? [])
    case 'data': return data(v, name)
    case 'strings': return typeof v === 'string' ? [string(v, name)] : stringList(v, name, 1)
    case 'list': return stringList(v, name, 1)
    case 'json-list': return stringList(v, name, 1)
    case 'integer-list': {
      if (!Array.isArray(v) || v.length === 0) throw invalid('non-empty array of integers', name, v)
      return [...new Set(v.map((x, i) => integer(x, `${name}[${i}]`, spec.min ?? 0, spec.max)))]
    }
    case 'verbalizer': return verbalizerSpec(v, name)
    case 'label-map': return labelMap(v, name)
    case 'signal':
      if (typeof v !== 'object' || v === null || typeof (v as AbortSignal).aborted !== 'boolean' || typeof (v as AbortSignal).addEventListener !== 'function') throw invalid('AbortSignal', name, v)
      return v
    case 'function':
      if (typeof v !== 'function') throw invalid('function', name, v)
      return v
  }
}

/** A JSONL path, or an array of records: strings or plain objects. */
export function data (v: unknown, name: string): string | readonly unknown[] {
  if (typeof v === 'string') return string(v, name)
  if (!Array.isArray(v)) throw invalid('JSONL path or array of records', name, v)
  if (v.length === 0) throw new PetError(`${name} has no records`, 'EINVAL')
  v.forEach((r, i) => {
    if (typeof r !== 'string' && !isPlainObject(r)) throw invalid('string or plain object', `${name}[${i}]`, r)
  })
  return v
}

export function stringList (v: unknown, name: string, minLength = 0): string[] {
  if (!Array.isArray(v) || v.length < minLength || !v.every(x => typeof x === 'string' && x.length > 0)) {
    throw invalid(`array of ${minLength > 0 ? `at least ${minLength} ` : ''}non-empty strings`, name, v)
  }
  return [...v] as string[]
}

/** {"label": "word" | ["word", …]}: the shape only; the tokens are checked against the vocabulary later. */
export function verbalizerSpec (v: unknown, name: string): Record<string, string | string[]> {
  if (!isPlainObject(v) || Object.keys(v).length < 2) throw invalid('object of at least two labels {"label": ["word", …]}', name, v)
  for (const [label, words] of Object.entries(v)) {
    const list = typeof words === 'string' ? [words] : words
    if (!Array.isArray(list) || list.length === 0 || !list.every(w => typeof w === 'string' && w.length > 0)) {
      throw invalid(`non-empty string or list of strings for label '${label}'`, name, words)
    }
  }
  return v as Record<string, string | string[]>
}

/** raw label -> label name: an object, or the path of a JSON file holding one */
export function labelMap (v: unknown, name: string): Record<string, string> | string {
  if (typeof v === 'string') return string(v, name)
  if (!isPlainObject(v) || Object.keys(v).length === 0 || !Object.values(v).every(x => typeof x === 'string' && x.length > 0)) {
    throw invalid('object of raw label -> label name, e.g. {"news_sports":"体育"}, or a JSON file of one', name, v)
  }
  return v as Record<string, string>
}

/**
 * A workflow's options object checked against the table: unknown keys, wrong kinds and values out of range are
 * PetErrors (EINVAL) naming the option; defaults are filled in; required options must be there.
 */
export function workflowOptions<T> (w: WorkflowSpec, input: unknown): T {
  if (input === undefined || input === null) input = {}
  if (!isPlainObject(input)) throw invalid('options object', `${w.name} options`, input)
  knownKeys(input, w.options, `${w.name}`)
  const out: Record<string, unknown> = {}
  for (const name of w.options) {
    const v = input[name]
    if (v === undefined) {
      const d = defaultOf(w, name)
      if (d !== undefined) out[name] = Array.isArray(d) ? [...d] : d
    } else {
      out[name] = optionValue(optionTable[name], v, name)
    }
  }
  for (const name of w.required ?? []) {
    if (out[name] === undefined) throw new PetError(`${w.name}: the option '${name}' is required`, 'EINVAL')
  }
  return out as T
}
