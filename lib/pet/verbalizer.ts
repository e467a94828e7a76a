// A verbalizer maps each label to one or more words; each word is one or more vocabulary tokens, and words may
// have different token counts (购物 / 地图导航 / 休闲益智游戏): a word of k tokens is read at k [MASK]s. Many-to-one
// (很/挺/太 -> positive) and multi-token labels (体育 -> 2 masks).
import { PetError } from '../errors'
import type { Tokenizer } from '../tokenizer/tokenizer'
import { labelWordIds, type MaskContext, type Pattern } from './pattern'
import { isPlainObject } from '../validate'

/** A verbalizer as written in JSON: each label with its word or words (`{"positive": ["很", "挺"], "negative": "不"}`). */
export type VerbalizerSpec = Record<string, string | string[]>

export interface VerbalizerWord {
  text: string
  /** one token id per [MASK] slot it fills */
  ids: number[]
}

/**
 * A VerbalizerSpec checked against a tokenizer: each label's words as token ids, the distinct word lengths (one
 * cloze per length) and the candidate ids scored at each [MASK]. Throws a PetError (EVERBALIZER) for an unknown,
 * empty or shared word.
 */
export class Verbalizer {
  readonly labels: readonly string[]
  readonly words: readonly (readonly VerbalizerWord[])[]
  /** the distinct token counts of the words, ascending: one cloze (encoder pass) per length */
  readonly lengths: readonly number[]
  /** the union of every word's token ids: the candidates scored at each [MASK] */
  readonly candidates: readonly number[]
  /** candidateIndex.get(id) = index of a token id in candidates */
  readonly candidateIndex: ReadonlyMap<number, number>

  /**
   * `patterns`: the pattern(s) the words fill, for tokenizers whose ids depend on what precedes the word (a space,
   * text, nothing: see labelWordIds); every word must then have the same ids in all of them. Without, a word is taken
   * as joined to the text before it.
   */
  constructor (spec: VerbalizerSpec, tokenizer: Tokenizer, patterns?: Pattern | readonly Pattern[]) {
    if (!isPlainObject(spec)) throw new PetError('the verbalizer must be a JSON object {"label": ["word", ...]}', 'EVERBALIZER')
    const labels = Object.keys(spec)
    if (labels.length < 2) throw new PetError('the verbalizer needs at least two labels', 'EVERBALIZER')
    const contexts = maskContextsOf(tokenizer, patterns)
    const words: VerbalizerWord[][] = []
    for (const label of labels) {
      const raw = spec[label]
      const list = typeof raw === 'string' ? [raw] : raw
      if (Array.isArray(list) && list.length === 0) throw new PetError(`the verbalizer label '${label}' has no words`, 'EVERBALIZER')
      if (!Array.isArray(list) || !list.every(w => typeof w === 'string')) {
        throw new PetError(`the verbalizer words of label '${label}' must be a non-empty string or list of strings`, 'EVERBALIZER')
      }
      const ws: VerbalizerWord[] = []
      for (const text of list) {
        const ids = labelWordIds(text, tokenizer, contexts[0])
        for (const c of contexts.slice(1)) {
          if (labelWordIds(text, tokenizer, c).join(',') !== ids.join(',')) {
            const list: readonly Pattern[] = Array.isArray(patterns) ? patterns : [patterns as Pattern]
            throw new PetError(`the patterns ${list.map(p => `'${p.source}'`).join(', ')} differ in whether a space or text precedes [MASK], ` +
              `and with this tokenizer the label word '${text}' has other tokens there: write them alike`, 'EPATTERN')
          }
        }
        if (ids.length === 0) throw new PetError(`the verbalizer label '${label}' has an empty word ('${text}' has no tokens)`, 'EVERBALIZER')
        if (ids.includes(tokenizer.unkId)) {
          throw new PetError(`unknown verbalizer token '${text}' for label '${label}': it is not in the model's vocabulary ` +
            `(it tokenizes to ${tokenizer.tokenize(text).join(' ')})`, 'EVERBALIZER')
        }
        ws.push({ text, ids })
      }
      words.push(ws)
    }
    const seen = new Map<string, string>()
    labels.forEach((label, l) => {
      for (const w of words[l]) {
        const key = w.ids.join(',')
        const other = seen.get(key)
        if (other !== undefined && other !== label) {
          throw new PetError(`verbalizer word '${w.text}' is used for both '${other}' and '${label}'`, 'EVERBALIZER')
        }
        seen.set(key, label)
      }
    })
    this.labels = labels
    this.words = words
    this.lengths = [...new Set(words.flat().map(w => w.ids.length))].sort((a, b) => a - b)
    this.candidates = [...new Set(words.flat().flatMap(w => w.ids))]
    this.candidateIndex = new Map(this.candidates.map((id, i) => [id, i]))
  }

  static parse (json: string, tokenizer: Tokenizer, patterns?: Pattern | readonly Pattern[]): Verbalizer {
    let spec: unknown
    try {
      spec = JSON.parse(json)
    } catch (err) {
      throw new PetError(`the verbalizer is not valid JSON (${(err as Error).message}): ${json}`, 'EVERBALIZER')
    }
    return new Verbalizer(spec as VerbalizerSpec, tokenizer, patterns)
  }

  labelIndex (label: string): number {
    const i = this.labels.indexOf(label)
    if (i < 0) throw new PetError(`unknown label '${label}' (the verbalizer has ${this.labels.map(l => `'${l}'`).join(', ')})`, 'EDATA')
    return i
  }

  toJSON (): Record<string, string[]> {
    return Object.fromEntries(this.labels.map((l, i) => [l, this.words[i].map(w => w.text)]))
  }
}

/** The distinct places the label words stand in across the patterns (one, 'joined', without patterns or where it cannot matter). */
function maskContextsOf (tokenizer: Tokenizer, patterns: Pattern | readonly Pattern[] | undefined): MaskContext[] {
  if (patterns === undefined || !tokenizer.spaceSensitive) return ['joined']
  const list: readonly Pattern[] = Array.isArray(patterns) ? patterns : [patterns as Pattern]
  const contexts = [...new Set(list.map(p => p.maskContext))]
  return contexts.length > 0 ? contexts : ['joined']
}
