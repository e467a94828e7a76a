// P-tuning prompt layouts: never-used [unusedN] tokens around the [MASK], as a pattern. [unusedN] is the
// tokenizer's promptTokenId(N): BERT's own [unusedN]; for a vocabulary without them (BPE, Unigram), the N-th id
// counted back from its end, special tokens skipped (Tokenizer.promptTokenId).
import { PetError } from '../errors'
import type { MaskedLM } from '../model'
import type { Pattern } from '../pet/pattern'
import type { Tokenizer } from '../tokenizer/tokenizer'

/** A prompt token as written in patterns and verbalizers. */
export const PROMPT_TOKEN_RE = /^\[unused(\d+)\]$/

/** How promptPattern places a P-tuning prompt's tokens: split in two ('around'), all first, or after the text. */
export type PromptLayout = 'around' | 'prefix' | 'suffix'

/**
 * A masked LM (the seed's bert.py): around: [unused1..k] [MASK] [unused(k+1)..n] {text}, k = n/2; prefix:
 * [unused1..n] [MASK] {text}; suffix: {text} [unused1..n] [MASK]. A causal LM reads its answer after everything
 * else, so the [MASK] comes last and the prompt goes around the text (the seed's gpt.py: [CLS] [u1..u4] text
 * [u5..u8] label): around: [unused1..k] {text} [unused(k+1)..n] [MASK]; prefix: [unused1..n] {text} [MASK];
 * suffix: {text} [unused1..n] [MASK]. `first` is the first [unusedN] index.
 */
export function promptPattern (tokens: number, layout: PromptLayout, first = 1, causal = false): string {
  if (!Number.isInteger(tokens) || tokens < 1 || first + tokens - 1 > 99) throw new PetError(`--prompt-tokens must be 1..${100 - first}`, 'EINVAL')
  const u = (i: number) => `[unused${first + i}]`
  const all = Array.from({ length: tokens }, (_, i) => u(i))
  if (causal) {
    const k = layout === 'around' ? Math.ceil(tokens / 2) : layout === 'prefix' ? tokens : 0
    return `${all.slice(0, k).join('')}{text}${all.slice(k).join('')}[MASK]`
  }
  if (layout === 'around') {
    const k = Math.ceil(tokens / 2)
    return `${all.slice(0, k).join('')}[MASK]${all.slice(k).join('')}{text}`
  }
  if (layout === 'prefix') return `${all.join('')}[MASK]{text}`
  return `{text}${all.join('')}[MASK]`
}

/** The word-embedding rows a pattern's [unusedN] tokens use, in order of appearance (see Tokenizer.promptTokenId). */
export function promptRows (pattern: Pattern, tokenizer: Pick<Tokenizer, 'promptTokenId'>): number[] {
  const rows: number[] = []
  for (const p of pattern.pieces) {
    const m = p.kind === 'special' ? PROMPT_TOKEN_RE.exec(p.token) : null
    if (m !== null) {
      let id: number
      try {
        id = tokenizer.promptTokenId(Number(m[1]))
      } catch (err) {
        throw new PetError(`${(p as { token: string }).token} is not in the vocabulary (${(err as Error).message})`, 'EPATTERN')
      }
      if (!rows.includes(id)) rows.push(id)
    }
  }
  return rows
}

/**
 * Start values for the prompt rows from real tokens (as PEFT's prompt_tuning_init TEXT does): `text` is tokenized
 * without [CLS]/[SEP] and must give exactly one token per row, e.g. '感觉如何？满意。' for 8 rows. Returns the
 * [rows, hidden] word-embedding rows of those tokens.
 */
export function promptInitValues (model: MaskedLM, text: string, rows: readonly number[]): Float32Array {
  const ids = model.tokenizer.encode(text)
  if (ids.length !== rows.length) {
    throw new PetError(`--prompt-init must give one token per prompt token (${rows.length}); '${text}' gives ${ids.length}: ` +
      model.tokenizer.tokenize(text).join(' '), 'EINVAL')
  }
  const w = model.getTensor(model.info.config.wordEmbeddings)
  const h = w.shape[1]
  const out = new Float32Array(ids.length * h)
  ids.forEach((id, i) => out.set(w.data.subarray(id * h, (id + 1) * h), i * h))
  return out
}
