// Any Hugging Face tokenizer.json (WordPiece, byte-level BPE, Unigram, …) through the pure-JS
// @huggingface/tokenizers, which gives HF's ids exactly on the fixtures of the four families (test/12).
// Folders with a vocab.txt keep our own WordPieceTokenizer (same ids, ~40x faster).
import * as fs from 'node:fs'
import * as path from 'node:path'
import { Tokenizer as JsTokenizer } from '@huggingface/tokenizers'
import { PetError } from '../errors'
import type { Tokenizer } from './tokenizer'

type Json = Record<string, unknown>

interface AddedTokenJson { id: number, content: string, special?: boolean }

const ROLES = ['cls', 'sep', 'mask', 'pad', 'unk'] as const
type Role = typeof ROLES[number]

/** Per-text cache of plain-text ids (patterns re-encode the same literal pieces and label words). */
const CACHE_LIMIT = 50_000
const CACHE_MAX_LENGTH = 256

function readJson (file: string, required: boolean): Json | undefined {
  if (!fs.existsSync(file)) {
    if (required) throw new PetError(`${file} not found`, 'ENOENT')
    return undefined
  }
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Json
  } catch (err) {
    throw new PetError(`${file} cannot be read as JSON: ${(err as Error).message}`, 'EMODEL')
  }
}

/** A tokenizer_config.json / special_tokens_map.json entry: "<s>" or {"content": "<s>", …}. */
function tokenString (v: unknown): string | undefined {
  if (typeof v === 'string') return v
  if (v !== null && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string
  return undefined
}

function preTokenizerTypes (p: unknown): string[] {
  if (p === null || typeof p !== 'object') return []
  const j = p as Json
  if (Array.isArray(j.pretokenizers)) return j.pretokenizers.flatMap(preTokenizerTypes)
  return typeof j.type === 'string' ? [j.type] : []
}

/**
 * A copy whose Metaspace pre-tokenizer prepends no "▁" (prepend_scheme "never"), for text that continues the text
 * before it with no special token between (a pattern's "{text}。" or "评论：{text}"): HF, encoding the whole string,
 * prepends only at its start and after each special token. Undefined when the tokenizer prepends nothing.
 */
function continuedCopy (json: Json): Json | undefined {
  let changed = false
  const rewrite = (p: unknown): unknown => {
    if (p === null || typeof p !== 'object') return p
    const j = p as Json
    if (Array.isArray(j.pretokenizers)) return { ...j, pretokenizers: j.pretokenizers.map(rewrite) }
    if (j.type !== 'Metaspace') return p
    const scheme = j.prepend_scheme ?? (j.add_prefix_space === false ? 'never' : 'always')
    if (scheme === 'never') return p
    changed = true
    return { ...j, prepend_scheme: 'never', add_prefix_space: false }
  }
  const pre = rewrite(json.pre_tokenizer)
  return changed ? { ...json, pre_tokenizer: pre } : undefined
}

/** The continued copies (continuedCopy) of the tokenizers that have one, with their own caches. */
const continuedOf = new WeakMap<HfTokenizer, { tok: JsTokenizer, cache: Map<string, readonly number[]> }>()

/**
 * Ids of plain text that directly follows other text in one sequence (see continuedCopy): `tokenizer.encode`
 * except for a Metaspace tokenizer, which then adds no leading "▁".
 */
export function encodeContinued (tokenizer: Tokenizer, text: string): number[] {
  const c = tokenizer instanceof HfTokenizer ? continuedOf.get(tokenizer) : undefined
  if (c === undefined) return tokenizer.encode(text)
  return cached(c.cache, text, () => c.tok.encode(text, { add_special_tokens: false }).ids)
}

function cached (cache: Map<string, readonly number[]>, text: string, encode: () => number[]): number[] {
  const hit = cache.get(text)
  if (hit !== undefined) return hit.slice()
  const ids = encode()
  if (text.length <= CACHE_MAX_LENGTH) {
    if (cache.size >= CACHE_LIMIT) cache.clear()
    cache.set(text, ids.slice())
  }
  return ids
}

/**
 * Any Hugging Face tokenizer.json (WordPiece, byte-level BPE, Unigram) through HF's tokenizers for JavaScript, with
 * the special tokens of tokenizer_config.json / special_tokens_map.json: for model folders without a vocab.txt.
 */
export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number
  readonly spaceSensitive: boolean
  /** where it was read from, for messages */
  readonly source: string
  /** the tokenizer as HF has it: special tokens in text are split out; used for the reference (pairs, [CLS]…) */
  private readonly full: JsTokenizer
  /** the same with no added tokens: user text is never parsed for special tokens */
  private readonly plain: JsTokenizer
  private readonly specials: Partial<Record<Role, string>>
  private readonly specialIds: ReadonlySet<number>
  private readonly cache = new Map<string, readonly number[]>()
  private promptIds: number[] | undefined

  /** tokenizer.json of `dir`, with tokenizer_config.json and special_tokens_map.json when present. */
  static fromDir (dir: string): HfTokenizer {
    const json = readJson(path.join(dir, 'tokenizer.json'), true)!
    const config = readJson(path.join(dir, 'tokenizer_config.json'), false) ?? {}
    const map = readJson(path.join(dir, 'special_tokens_map.json'), false) ?? {}
    return new HfTokenizer(json, { ...map, ...config }, path.join(dir, 'tokenizer.json'))
  }

  constructor (tokenizerJson: Json, tokenizerConfig: Json = {}, source = 'tokenizer.json') {
    this.source = source
    const model = tokenizerJson.model as Json | undefined
    if (model === undefined || typeof model !== 'object') throw new PetError(`${source}: no "model" section`, 'EMODEL')
    const added = (Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens : []) as AddedTokenJson[]
    try {
      this.full = new JsTokenizer(tokenizerJson, tokenizerConfig)
      const plain = plainCopy(tokenizerJson, added)
      this.plain = new JsTokenizer(plain, tokenizerConfig)
      const continued = continuedCopy(plain)
      if (continued !== undefined) continuedOf.set(this, { tok: new JsTokenizer(continued, tokenizerConfig), cache: new Map() })
    } catch (err) {
      throw new PetError(`${source}: the tokenizer cannot be built: ${(err as Error).message}`, 'EMODEL')
    }
    const types = preTokenizerTypes(tokenizerJson.pre_tokenizer)
    this.spaceSensitive = types.includes('ByteLevel') || types.includes('Metaspace')

    // Special tokens from the model's files: tokenizer_config.json (or special_tokens_map.json), else the
    // post-processor's cls/sep, else the added special tokens of a known role name. Never BERT's names by default.
    const post = (tokenizerJson.post_processor ?? {}) as Json
    const specials: Partial<Record<Role, string>> = {}
    for (const role of ROLES) {
      const t = tokenString(tokenizerConfig[`${role}_token`])
      if (t !== undefined) specials[role] = t
    }
    for (const role of ['cls', 'sep'] as const) {
      const pair = post[role]
      if (specials[role] === undefined && Array.isArray(pair) && typeof pair[0] === 'string') specials[role] = pair[0]
    }
    const template = post.single
    if (Array.isArray(template)) {
      const ids = template.flatMap(p => (p as Json).SpecialToken !== undefined ? [((p as Json).SpecialToken as Json).id as string] : [])
      if (specials.cls === undefined && ids.length >= 1 && template[0] && (template[0] as Json).SpecialToken !== undefined) specials.cls = ids[0]
      if (specials.sep === undefined && ids.length >= 1 && (template[template.length - 1] as Json).SpecialToken !== undefined) specials.sep = ids[ids.length - 1]
    }
    const guesses: Record<Role, string[]> = { cls: ['<s>', '[CLS]'], sep: ['</s>', '[SEP]'], mask: ['<mask>', '[MASK]'], pad: ['<pad>', '[PAD]'], unk: ['<unk>', '[UNK]'] }
    for (const role of ROLES) {
      if (specials[role] !== undefined) continue
      const hit = added.find(a => a.special === true && guesses[role].includes(a.content))
      if (hit !== undefined) specials[role] = hit.content
    }
    if (specials.unk === undefined && typeof model.unk_token === 'string') specials.unk = model.unk_token
    if (specials.unk === undefined && typeof model.unk_id === 'number') specials.unk = this.full.id_to_token(model.unk_id)
    this.specials = specials
    this.specialIds = new Set(added.filter(a => a.special === true).map(a => a.id))

    let size = 0
    const vocab = model.vocab
    if (Array.isArray(vocab)) size = vocab.length
    else if (vocab !== null && typeof vocab === 'object') size = Math.max(-1, ...Object.values(vocab as Record<string, number>)) + 1
    for (const a of added) size = Math.max(size, a.id + 1)
    this.vocabSize = size
  }

  private role (role: Role): number {
    const token = this.specials[role]
    if (token === undefined) {
      throw new PetError(`${this.source}: the tokenizer has no ${role} token (set ${role}_token in tokenizer_config.json)`, 'EMODEL')
    }
    return this.specialId(token)
  }

  get clsId (): number { return this.role('cls') }
  get sepId (): number { return this.role('sep') }
  get maskId (): number { return this.role('mask') }
  get padId (): number { return this.role('pad') }
  get unkId (): number { return this.role('unk') }

  /** The token a role has ('cls' → '<s>'), undefined when the files name none. */
  specialToken (role: Role): string | undefined { return this.specials[role] }

  /** Pattern syntax maps onto this tokenizer: [SEP] → its sep token, [MASK] → its mask token, [unusedN] → promptTokenId(N). */
  specialId (token: string): number {
    const direct = this.full.token_to_id(token)
    if (direct !== undefined) return direct
    if (token === '[SEP]') return this.sepId
    if (token === '[MASK]') return this.maskId
    if (token === '[CLS]') return this.clsId
    const m = /^\[unused(\d+)\]$/.exec(token)
    if (m !== null) return this.promptTokenId(Number(m[1]))
    throw new PetError(`token "${token}" is not in the vocabulary of ${this.source}`, 'EMODEL')
  }

  tokenToId (token: string): number | undefined { return this.full.token_to_id(token) }

  idToToken (id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 && id < this.vocabSize ? this.full.id_to_token(id) : undefined
  }

  encode (text: string): number[] {
    return cached(this.cache, text, () => this.plain.encode(text, { add_special_tokens: false }).ids)
  }

  tokenize (text: string): string[] {
    return this.encode(text).map(id => this.full.id_to_token(id) ?? '')
  }

  /** HF's own input ids, special tokens added by the post-processor and typed ones split out (as `tokenizer(text)`). */
  encodeWithSpecials (text: string, pair?: string): number[] {
    return this.full.encode(text, { add_special_tokens: true, ...(pair !== undefined ? { text_pair: pair } : {}) }).ids
  }

  promptTokenId (n: number): number {
    if (!Number.isInteger(n) || n < 1) throw new PetError(`prompt token [unused${n}]: the index must be a positive integer`, 'EPATTERN')
    const own = this.full.token_to_id(`[unused${n}]`)
    if (own !== undefined) return own
    if (this.promptIds === undefined) {
      const ids: number[] = []
      for (let id = this.vocabSize - 1; id >= 0 && ids.length < 99; id--) if (!this.specialIds.has(id)) ids.push(id)
      this.promptIds = ids
    }
    const id = this.promptIds[n - 1]
    if (id === undefined) throw new PetError(`prompt token [unused${n}]: the vocabulary of ${this.source} is too small`, 'EPATTERN')
    return id
  }
}

/**
 * The tokenizer.json with no added tokens, so that "<mask>" typed in a review is text ("<", "m", "as", "k", ">"), as
 * HF's split_special_tokens=True gives for byte-level BPE and WordPiece. A Unigram model can still match a special
 * token's own vocabulary entry ("<mask>" → 4, which HF's split_special_tokens=True also does): those entries are
 * renamed in the copy so that no text reaches them (their scores, and so the unknown token's, stay as they are).
 */
function plainCopy (json: Json, added: readonly AddedTokenJson[]): Json {
  const model = json.model as Json
  let vocab = model.vocab
  if (model.type === 'Unigram' && Array.isArray(vocab)) {
    const special = new Set(added.filter(a => a.special === true).map(a => a.id))
    const unk = typeof model.unk_id === 'number' ? model.unk_id : -1
    vocab = (vocab as Array<[string, number]>).map(([piece, score], id) => special.has(id) && id !== unk ? [`\uffff\ufffe${id}`, score] : [piece, score])
  }
  return { ...json, added_tokens: [], model: { ...model, vocab } }
}
