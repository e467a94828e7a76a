import { workflows } from '../options'
import { tokenize } from '../index'
import { command } from './command'

export = command({
  name: 'tokenize',
  workflow: workflows.tokenize,
  about: `Prints one JSON line per text: {"input_ids": [...], "tokens": [...]} with [CLS] and [SEP], as Hugging Face's
BertTokenizer gives them: special tokens typed in the text ([MASK], [SEP], …) are those tokens. (Pattern filling,
by contrast, keeps user text plain: a review containing "[MASK]" adds no mask.) Input lines are JSON strings or
objects with the text field.`,
  run: tokenize,
  // the lines are the output, with or without --json
  print: r => { for (const t of r.texts) process.stdout.write(JSON.stringify({ input_ids: t.inputIds, tokens: t.tokens }) + '\n') },
  omit: ['texts']
})
