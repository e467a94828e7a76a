// Records (from a JSONL file or from memory) turned into examples: the pattern's fields and an optional label.
import * as fs from 'node:fs'
import { PetError } from '../errors'
import { readJsonl } from './jsonl'

/** One input record: a bare string (the text) or an object with the text field(s) and maybe a label. */
export type DataRecord = string | Readonly<Record<string, unknown>>

/** Examples as a JSONL path or as records in memory. */
export type DataInput = string | readonly DataRecord[]

/** An input to a pattern: its fields' texts, an optional label, and where it came from. */
export interface Example {
  /** field name -> text, e.g. { text: '...' } or { text_a, text_b } */
  fields: Record<string, string>
  label?: string
  /** where it came from, for error messages ("file.jsonl:3", "train[2]") */
  source: string
}

/** Where an example's parts are in a record: the key of each pattern field, the label's key, a map of raw labels. */
export interface FieldMap {
  /** pattern field -> record key; default: same name ('text' also falls back to 'sentence') */
  fields?: Record<string, string>
  /** record key of the label; absent: unlabeled */
  labelField?: string
  /** maps raw label values (e.g. TNEWS codes) to verbalizer labels */
  labelMap?: Record<string, string>
}

/** A label map given as the path of a JSON file: read and checked once. */
export function readLabelMap (m: Record<string, string> | string | undefined): Record<string, string> | undefined {
  if (typeof m !== 'string') return m
  let o: unknown
  try {
    o = JSON.parse(fs.readFileSync(m, 'utf8'))
  } catch (err) {
    throw new PetError(`cannot read the label map ${m}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'ENOENT')
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o) || Object.keys(o).length === 0 || !Object.values(o).every(x => typeof x === 'string' && x.length > 0)) {
    throw new PetError(`${m}: a label map is a JSON object of raw label -> label name, e.g. {"news_sports":"体育"}`, 'EDATA')
  }
  return o as Record<string, string>
}

/** How toExamples reads records: the pattern's fields, the text and label keys, a label map. */
export interface ExampleOptions {
  /** the fields the pattern reads (default ['text']) */
  fields?: readonly string[]
  /** record key of the text, for a one-field pattern (default: the field's own name) */
  textField?: string
  /** record key of the label (default 'label'; absent in a record: unlabeled) */
  labelField?: string
  /** raw label -> label name, or the path of a JSON file holding that object */
  labelMap?: Record<string, string> | string
  /** the name used in error messages (default 'records') */
  source?: string
}

/** Plain records as examples: `toExamples(['好', { text: '不好', label: 'negative' }])`. */
export function toExamples (records: readonly DataRecord[], options: ExampleOptions = {}): Example[] {
  const fields = options.fields ?? ['text']
  const name = options.source ?? 'records'
  return records.map((r, i) => exampleOf(r, `${name}[${i}]`, fields, fieldMap(fields, options)))
}

/** The FieldMap of a one-field pattern read from `textField`. */
export function fieldMap (fields: readonly string[], o: Pick<ExampleOptions, 'textField' | 'labelField' | 'labelMap'>): FieldMap {
  const textField = o.textField ?? 'text'
  return {
    fields: fields.length === 1 && textField !== fields[0] && textField !== 'text' ? { [fields[0]]: textField } : undefined,
    labelField: o.labelField ?? 'label',
    labelMap: readLabelMap(o.labelMap)
  }
}

/** A JSONL path or records in memory, as examples; `what` names the input in errors (the option's name). */
export function loadExamples (input: DataInput, fields: readonly string[], map: FieldMap, what: string): Example[] {
  if (typeof input === 'string') return readJsonl(input).map(r => exampleOf(r.value, `${input}:${r.line}`, fields, map))
  return input.map((r, i) => exampleOf(r, `${what}[${i}]`, fields, map))
}

/** One record as an example; `source` names it in errors ("file.jsonl:3"). */
export function exampleOf (value: unknown, source: string, patternFields: readonly string[], map: FieldMap): Example {
  const fields: Record<string, string> = {}
  if (typeof value === 'string') {
    if (patternFields.length !== 1) throw new PetError(`${source}: a bare string cannot fill the fields ${patternFields.join(', ')}`, 'EDATA')
    fields[patternFields[0]] = value
    return { fields, source }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PetError(`${source}: expected a JSON string or object`, 'EDATA')
  }
  const o = value as Record<string, unknown>
  for (const f of patternFields) {
    let key = map.fields?.[f] ?? f
    if (!(key in o) && key === 'text' && typeof o.sentence === 'string') key = 'sentence' // FewCLUE's name
    const text = o[key]
    if (typeof text !== 'string') throw new PetError(`${source}: no text field '${key}'`, 'EDATA')
    fields[f] = text
  }
  let label: string | undefined
  if (map.labelField !== undefined && map.labelField in o && o[map.labelField] !== undefined && o[map.labelField] !== null) {
    const raw = o[map.labelField]
    if (typeof raw !== 'string' && typeof raw !== 'number') throw new PetError(`${source}: label '${map.labelField}' is not a string`, 'EDATA')
    label = String(raw)
    if (map.labelMap) {
      const mapped = map.labelMap[label]
      if (mapped === undefined) throw new PetError(`${source}: label '${label}' is not in the label map`, 'EDATA')
      label = mapped
    }
  }
  return { fields, label, source }
}
