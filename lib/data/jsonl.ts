// JSON Lines input: each line a JSON string or an object. Errors name the file and the line number.
import * as fs from 'node:fs'
import { PetError } from '../errors'

/** One parsed line of a JSONL file: its 1-based line number and its JSON value. */
export interface JsonlRecord {
  line: number
  value: unknown
}

/** JSON Lines text as records; an empty line or invalid JSON is a PetError (EDATA) naming `source` and the line. */
export function parseJsonl (text: string, source: string): JsonlRecord[] {
  const lines = text.split(/\r?\n/)
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop() // the final newline ends the last line
  const out: JsonlRecord[] = []
  lines.forEach((raw, i) => {
    const line = i + 1
    if (raw.trim() === '') throw new PetError(`${source}:${line}: empty line`, 'EDATA')
    try {
      out.push({ line, value: JSON.parse(raw) })
    } catch (err) {
      throw new PetError(`${source}:${line}: invalid JSON (${(err as Error).message})`, 'EDATA')
    }
  })
  return out
}

/** A JSONL file's records (parseJsonl); an unreadable file is a PetError (ENOENT), one without records EDATA. */
export function readJsonl (file: string): JsonlRecord[] {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    throw new PetError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'ENOENT')
  }
  const records = parseJsonl(text, file)
  if (records.length === 0) throw new PetError(`${file}: no examples`, 'EDATA')
  return records
}
