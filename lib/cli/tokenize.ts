import * as path from 'node:path'
import { readJsonl } from '../data/jsonl'
import { PetError } from '../errors'
import { defaultModelDir } from '../model'
import { WordPieceTokenizer } from '../tokenizer/wordpiece'
import { parse, UsageError } from './args'

export const usage = `pet tokenize [--model DIR] (--text T | --input FILE.jsonl) [--text-field text]
  Prints one JSON line per text: {"input_ids": [...], "tokens": [...]} with [CLS] and [SEP].
  Input lines are JSON strings or objects with the text field.`

export async function run (argv: string[]): Promise<void> {
  const a = parse(argv, { model: { type: 'string' }, text: { type: 'string' }, input: { type: 'string' }, 'text-field': { type: 'string' } })
  if (a.help) { console.log(usage); return }
  if ((a.text === undefined) === (a.input === undefined)) throw new UsageError('give exactly one of --text or --input')
  const dir = (a.model as string | undefined) ?? defaultModelDir
  const tok = WordPieceTokenizer.fromFile(path.join(dir, 'vocab.txt'), { splitSpecialTokens: false })
  const field = (a['text-field'] as string | undefined) ?? 'text'
  const texts: string[] = a.text !== undefined
    ? [a.text as string]
    : readJsonl(a.input as string).map(r => {
      if (typeof r.value === 'string') return r.value
      const o = r.value as Record<string, unknown> | null
      if (o && typeof o === 'object' && typeof o[field] === 'string') return o[field] as string
      throw new PetError(`${a.input as string}:${r.line}: expected a JSON string or an object with a string '${field}'`, 'EDATA')
    })
  for (const text of texts) {
    const ids = [tok.clsId, ...tok.encode(text), tok.sepId]
    process.stdout.write(JSON.stringify({ input_ids: ids, tokens: ids.map(i => tok.idToToken(i)) }) + '\n')
  }
}
