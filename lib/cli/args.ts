// Shared CLI plumbing: option parsing with node:util, usage errors, JSON summaries.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { PetError } from '../errors'

export class UsageError extends PetError {
  constructor (message: string) { super(message, 'EUSAGE') }
}

export type Options = NonNullable<ParseArgsConfig['options']>

export function parse (argv: string[], options: Options): Record<string, string | boolean | undefined> {
  try {
    const { values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false })
    return values as Record<string, string | boolean | undefined>
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

export function required (values: Record<string, unknown>, name: string): string {
  const v = values[name]
  if (typeof v !== 'string' || v.length === 0) throw new UsageError(`--${name} is required`)
  return v
}

export function intFlag (values: Record<string, unknown>, name: string, fallback: number, min = 1): number {
  const v = values[name]
  if (v === undefined) return fallback
  const n = Number(v)
  if (typeof v !== 'string' || !Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got '${String(v)}'`)
  return n
}

export function floatFlag (values: Record<string, unknown>, name: string, fallback: number): number {
  const v = values[name]
  if (v === undefined) return fallback
  const n = Number(v)
  if (typeof v !== 'string' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${String(v)}'`)
  return n
}

export function choice<T extends string> (values: Record<string, unknown>, name: string, allowed: readonly T[], fallback: T): T {
  const v = values[name]
  if (v === undefined) return fallback
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}`)
  return v as T
}

/** --label-map: a JSON object from raw label values (e.g. TNEWS label_desc) to the verbalizer's label names. */
export function labelMapFlag (values: Record<string, unknown>, name = 'label-map'): Record<string, string> | undefined {
  const v = values[name]
  if (v === undefined) return undefined
  let m: unknown
  try { m = JSON.parse(String(v)) } catch (err) { throw new UsageError(`--${name} is not valid JSON: ${(err as Error).message}`) }
  if (typeof m !== 'object' || m === null || Array.isArray(m) || Object.keys(m).length === 0 ||
    !Object.values(m).every(x => typeof x === 'string' && x.length > 0)) {
    throw new UsageError(`--${name} must be a JSON object of raw label -> label name, e.g. '{"news_sports":"体育"}'`)
  }
  return m as Record<string, string>
}

/** Human lines go to stdout unless --json; the JSON summary is always the last stdout line. */
export class Output {
  constructor (readonly json: boolean) {}
  line (s: string): void { if (!this.json) process.stdout.write(s + '\n') }
  summary (o: unknown): void { if (this.json) process.stdout.write(JSON.stringify(o) + '\n') }
}
