// Turning JSONL records into examples: the pattern's fields and an optional label.
import { PetError } from '../errors'
import type { JsonlRecord } from './jsonl'

export interface Example {
  /** field name -> text, e.g. { text: '...' } or { text_a, text_b } */
  fields: Record<string, string>
  label?: string
  /** where it came from, for error messages */
  source: string
}

export interface FieldMap {
  /** pattern field -> record key; default: same name ('text' also falls back to 'sentence') */
  fields?: Record<string, string>
  /** record key of the label; absent: unlabeled */
  labelField?: string
  /** maps raw label values (e.g. TNEWS codes) to verbalizer labels */
  labelMap?: Record<string, string>
}

export function toExamples (records: readonly JsonlRecord[], patternFields: readonly string[], file: string,
  map: FieldMap = {}): Example[] {
  return records.map(r => {
    const source = `${file}:${r.line}`
    const fields: Record<string, string> = {}
    if (typeof r.value === 'string') {
      if (patternFields.length !== 1) throw new PetError(`${source}: a bare string cannot fill the fields ${patternFields.join(', ')}`, 'EDATA')
      fields[patternFields[0]] = r.value
      return { fields, source }
    }
    if (typeof r.value !== 'object' || r.value === null || Array.isArray(r.value)) {
      throw new PetError(`${source}: expected a JSON string or object`, 'EDATA')
    }
    const o = r.value as Record<string, unknown>
    for (const f of patternFields) {
      let key = map.fields?.[f] ?? f
      if (!(key in o) && key === 'text' && typeof o.sentence === 'string') key = 'sentence' // FewCLUE's name
      const text = o[key]
      if (typeof text !== 'string') throw new PetError(`${source}: no text field '${key}'`, 'EDATA')
      fields[f] = text
    }
    let label: string | undefined
    if (map.labelField !== undefined && map.labelField in o) {
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
  })
}
