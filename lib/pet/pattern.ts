// A cloze pattern: literal text, input fields ({text}, {text_a}, {text_b}, ...), [MASK] slots and literal
// [unusedN] / [SEP] tokens. Special tokens are placed structurally: user text is never parsed for them.
import { PetError } from '../errors'
import { encodeContinued } from '../tokenizer/hf-tokenizer'
import type { Tokenizer } from '../tokenizer/tokenizer'

/** One parsed piece of a pattern: literal text, an input field ({text}), a [MASK] slot or a literal [SEP] / [unusedN]. */
export type PatternPiece =
  | { kind: 'text', value: string }
  | { kind: 'field', name: string }
  | { kind: 'mask' }
  | { kind: 'special', token: string }

/** An example as the pattern sees it: field name -> text. */
export type Fields = Readonly<Record<string, string>>

/** One example encoded in a pattern for a masked LM (Pattern.encode): a row of the model's batch. */
export interface EncodedInput {
  inputIds: number[]
  tokenTypeIds: number[]
  /** column of each [MASK] in pattern order */
  maskPositions: number[]
  /** how many text tokens truncation removed */
  truncated: number
}

/** An example in a pattern for a causal LM: what stands before the [MASK] and what follows it. */
export interface CausalInput {
  /** [CLS] + the pattern up to its [MASK] (the answer is read as its continuation) */
  prefix: number[]
  /** the rest of the pattern after the [MASK] (no [SEP]: a causal LM's text simply ends) */
  suffix: number[]
  truncated: number
}

/**
 * Where a label word stands in a pattern: 'space' when the pattern text directly before the [MASK] ends with
 * whitespace ("It was [MASK]."), 'start' when nothing or a special token precedes it ("[MASK]{text}", "{text}[SEP][MASK]"),
 * else 'joined' to the text before it ("这是[MASK]。", "{text}[MASK]").
 */
export type MaskContext = 'space' | 'joined' | 'start'

/**
 * The one rule for label words in context: a word has the ids HF gives it inside the whole filled-in string
 * (checked with transformers 5.18). For a tokenizer whose tokens carry the space before them (byte-level BPE
 * "Ġgreat", Metaspace "▁great": `spaceSensitive`), a word after a space is encoded with that space (" great"), and
 * the pattern text before the [MASK] loses its trailing whitespace (see Pattern.fit): "… It was great." → "Ġw as Ġ g
 * re at" on tiny-roberta. A word joined to the text before it continues that text (encodeContinued): Metaspace adds
 * no "▁" there ("不错这是很。" → "▁ 不错 这是 很 。" on tiny-xlmr), where at the start of the sequence or after a special
 * token it does ("很服务好" → "▁ 很 服务 好"). WordPiece ignores whitespace: unchanged. A word that is itself a
 * vocabulary entry is that token where the tokenizer ignores whitespace ("##们"); where its tokens carry the space,
 * only when written with the vocabulary's space mark ("Ġgreat", "▁很"), as a plain "很" is an entry too but stands
 * for text. "[unusedN]" is the prompt token N.
 */
export function labelWordIds (word: string, tokenizer: Tokenizer, context: MaskContext): number[] {
  const direct = tokenizer.tokenToId(word)
  if (direct !== undefined && (!tokenizer.spaceSensitive || SPACE_MARK_RE.test(word))) return [direct]
  if (/^\[unused\d+\]$/.test(word)) return [tokenizer.promptTokenId(Number(word.slice(7, -1)))]
  if (context === 'joined') return encodeContinued(tokenizer, word)
  return tokenizer.encode(tokenizer.spaceSensitive && context === 'space' ? ` ${word}` : word)
}

const SPACE_BEFORE_MASK_RE = /\s+$/u
/** byte-level BPE's and Metaspace's mark of a token that begins with a space */
const SPACE_MARK_RE = /^[\u0120\u2581]/u

const TOKEN_RE = /\{([A-Za-z_][A-Za-z0-9_]*)\}|\[(MASK|SEP|unused\d+)\]/g

/**
 * A parsed cloze pattern such as `{text}这是[MASK]。`: it encodes an example's fields around the [MASK] slot(s), the
 * pattern text kept whole and the field text truncated to fit. Throws a PetError (EPATTERN) when it has no [MASK] or
 * no field.
 */
export class Pattern {
  readonly source: string
  readonly pieces: readonly PatternPiece[]
  readonly fields: readonly string[]
  readonly maskCount: number

  constructor (source: string) {
    if (typeof source !== 'string' || source.length === 0) throw new PetError('the pattern is empty', 'EPATTERN')
    const pieces: PatternPiece[] = []
    let last = 0
    for (const m of source.matchAll(TOKEN_RE)) {
      if (m.index! > last) pieces.push({ kind: 'text', value: source.slice(last, m.index) })
      if (m[1] !== undefined) pieces.push({ kind: 'field', name: m[1] })
      else if (m[2] === 'MASK') pieces.push({ kind: 'mask' })
      else pieces.push({ kind: 'special', token: `[${m[2]}]` })
      last = m.index! + m[0].length
    }
    if (last < source.length) pieces.push({ kind: 'text', value: source.slice(last) })
    this.source = source
    this.pieces = pieces
    this.fields = [...new Set(pieces.flatMap(p => p.kind === 'field' ? [p.name] : []))]
    this.maskCount = pieces.filter(p => p.kind === 'mask').length
    if (this.maskCount === 0) throw new PetError(`the pattern '${source}' has no [MASK]`, 'EPATTERN')
    if (this.fields.length === 0) throw new PetError(`the pattern '${source}' has no input field such as {text}`, 'EPATTERN')
    if (pieces.filter(p => p.kind === 'special' && p.token === '[SEP]').length > 1) {
      throw new PetError(`the pattern '${source}' has more than one [SEP]`, 'EPATTERN')
    }
  }

  /** Where the (first) [MASK]'s label word stands: after whitespace of the pattern text, at the start, or joined (see labelWordIds). */
  get maskContext (): MaskContext {
    const at = this.pieces.findIndex(p => p.kind === 'mask')
    const before = at > 0 ? this.pieces[at - 1] : undefined
    if (before === undefined || before.kind === 'special') return 'start'
    return before.kind === 'text' && SPACE_BEFORE_MASK_RE.test(before.value) ? 'space' : 'joined'
  }

  /** True when the first [MASK] comes before the first field (a prefix pattern). */
  get isPrefix (): boolean {
    return this.pieces.findIndex(p => p.kind === 'mask') < this.pieces.findIndex(p => p.kind === 'field')
  }

  /**
   * [CLS] pieces... [SEP], at most maxLength tokens. Field text is truncated (the longest field first, from its
   * end); the pattern itself never is. A [SEP] in the pattern starts segment 1 (token type 1) after it.
   * `maskSpan` k > 1 (a pattern with one [MASK] only) puts k [MASK]s there: the cloze for words of k tokens.
   */
  encode (fields: Fields, tokenizer: Tokenizer, maxLength: number, maskSpan = 1): EncodedInput {
    if (maskSpan !== 1 && this.maskCount !== 1) throw new PetError(`the pattern '${this.source}' has ${this.maskCount} [MASK]: only a single [MASK] spans several tokens`, 'EPATTERN')
    const { parts, truncated } = this.fit(fields, tokenizer, maxLength, 2, maskSpan) // [CLS] + [SEP]
    const inputIds = [tokenizer.clsId]
    const tokenTypeIds = [0]
    const maskPositions: number[] = []
    let segment = 0
    this.pieces.forEach((p, i) => {
      for (const id of parts[i]) {
        if (p.kind === 'mask') maskPositions.push(inputIds.length)
        inputIds.push(id)
        tokenTypeIds.push(segment)
      }
      if (p.kind === 'special' && p.token === '[SEP]') segment = 1
    })
    inputIds.push(tokenizer.sepId)
    tokenTypeIds.push(segment)
    return { inputIds, tokenTypeIds, maskPositions, truncated }
  }

  /**
   * For a causal LM: [CLS] + the pieces before the [MASK] (the prefix), and the pieces after it (the suffix). The
   * answer takes `answerLength` tokens at the [MASK]; prefix + answer + suffix fit in maxLength, the text truncated
   * as in encode(). One [MASK] only: a left-to-right LM writes one answer.
   */
  encodeCausal (fields: Fields, tokenizer: Tokenizer, maxLength: number, answerLength: number): CausalInput {
    if (this.maskCount !== 1) throw new PetError(`the pattern '${this.source}' has ${this.maskCount} [MASK]: a causal LM's pattern has one, where the answer goes`, 'EPATTERN')
    const { parts, truncated } = this.fit(fields, tokenizer, maxLength, 1, answerLength) // [CLS]
    const at = this.pieces.findIndex(p => p.kind === 'mask')
    return { prefix: [tokenizer.clsId, ...parts.slice(0, at).flat()], suffix: parts.slice(at + 1).flat(), truncated }
  }

  /** Each piece's tokens (a [MASK] as maskSpan of them), the fields truncated (the longest first, from its end) so that all fit with `extra` tokens more. */
  private fit (fields: Fields, tokenizer: Tokenizer, maxLength: number, extra: number, maskSpan: number): { parts: number[][], truncated: number } {
    const parts: number[][] = []
    const isField: boolean[] = []
    let fixed = extra
    // Text right after other text (no special token between) continues it: Metaspace adds no "▁" there, as HF
    // encoding the whole string does (encodeContinued).
    const encodeText = (i: number, text: string) => {
      const prev = this.pieces[i - 1]
      return prev !== undefined && (prev.kind === 'text' || prev.kind === 'field') ? encodeContinued(tokenizer, text) : tokenizer.encode(text)
    }
    this.pieces.forEach((p, i) => {
      let ids: number[]
      if (p.kind === 'text') {
        // the space before a [MASK] goes with the label word (labelWordIds) where the tokenizer's tokens carry it
        const next = this.pieces[i + 1]
        ids = encodeText(i, tokenizer.spaceSensitive && next?.kind === 'mask' ? p.value.replace(SPACE_BEFORE_MASK_RE, '') : p.value)
      }
      else if (p.kind === 'mask') ids = new Array<number>(maskSpan).fill(tokenizer.maskId)
      else if (p.kind === 'special') ids = [p.token === '[SEP]' ? tokenizer.sepId : tokenizer.specialId(p.token)]
      else {
        const text = fields[p.name]
        if (typeof text !== 'string') {
          throw new PetError(`the example has no text for the pattern field {${p.name}}`, 'EDATA')
        }
        ids = encodeText(i, text)
      }
      parts.push(ids)
      isField.push(p.kind === 'field')
      if (p.kind !== 'field') fixed += ids.length
    })
    if (fixed > maxLength) {
      throw new PetError(`the pattern '${this.source}' needs ${fixed} tokens, more than the maximum length ${maxLength}`, 'EPATTERN')
    }
    let total = parts.reduce((n, ids) => n + ids.length, extra)
    let truncated = 0
    while (total > maxLength) {
      let longest = -1
      for (let i = 0; i < parts.length; i++) {
        if (isField[i] && (longest < 0 || parts[i].length > parts[longest].length)) longest = i
      }
      const cut = Math.min(total - maxLength, Math.max(1, parts[longest].length - secondLongest(parts, isField, longest)))
      parts[longest] = parts[longest].slice(0, parts[longest].length - cut)
      total -= cut
      truncated += cut
    }
    return { parts, truncated }
  }
}

function secondLongest (parts: number[][], isField: boolean[], skip: number): number {
  let n = 0
  for (let i = 0; i < parts.length; i++) if (isField[i] && i !== skip) n = Math.max(n, parts[i].length)
  return n
}
