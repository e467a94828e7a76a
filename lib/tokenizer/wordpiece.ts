/**
 * BERT WordPiece tokenizer, a faithful TypeScript port of Hugging Face's
 * `BertWordPieceTokenizer(vocab, lowercase=True, handle_chinese_chars=True, strip_accents=None)`
 * (`tokenizers`: special-token splitting + BertNormalizer + BertPreTokenizer + WordPiece).
 *
 * Pipeline for `tokenize(text)`:
 *  0. Special tokens ([UNK] [SEP] [CLS] [PAD] [MASK], those present in the vocabulary) are cut out of the
 *     raw text first, case-sensitively and leftmost-longest, exactly as HF's AddedVocabulary does for the
 *     special tokens that `BertWordPieceTokenizer` registers (`normalized: false`). So the text
 *     "[MASK]满意" gives "[MASK]", "满", "意" (that is what HF produces; see the reference fixture).
 *     Set `splitSpecialTokens: false` to treat such strings as plain text ("[", "mask", "]").
 *  1. BertNormalizer: clean text (drop U+0000, U+FFFD and "other" chars — Cc, Cf, Co — except \t \n \r;
 *     map White_Space to ' '), pad CJK ideographs with spaces, strip accents (NFD, drop Mn) when enabled,
 *     lowercase (per code point, like Rust's `char::to_lowercase`: no final-sigma rule).
 *  2. BertPreTokenizer: split on whitespace; every punctuation char (ASCII punctuation or Unicode P*)
 *     becomes its own word.
 *  3. WordPiece: greedy longest-match-first with "##" continuation; a word longer than
 *     `maxInputCharsPerWord` code points, or one that cannot be fully matched, becomes the unk token.
 *
 * Everything iterates by code point, so characters outside the BMP are never split into surrogate halves.
 */
import * as fs from 'node:fs'
import type { Tokenizer } from './tokenizer'

/** The settings of a WordPieceTokenizer, named as HF's BertWordPieceTokenizer names them; the defaults are HF's. */
export interface WordPieceOptions {
  /** Lowercase the text (default true). */
  lowercase?: boolean
  /** Strip accents (NFD + drop Mn). null/undefined: follow `lowercase`, as HF does. */
  stripAccents?: boolean | null
  /** Put spaces around CJK ideographs (default true). */
  handleChineseChars?: boolean
  /** Words longer than this many code points become the unk token (default 100). */
  maxInputCharsPerWord?: number
  /** Unknown token (default "[UNK]"). */
  unkToken?: string
  /** Prefix of word-continuation pieces (default "##"). */
  continuingSubwordPrefix?: string
  /**
   * Cut the special tokens ([UNK] [SEP] [CLS] [PAD] [MASK]) out of the raw text before normalization, as HF's
   * BertWordPieceTokenizer does (default true, which is what reproduces HF). With false, user text is never
   * parsed for special tokens: "[MASK]" tokenizes as "[", "mask", "]".
   */
  splitSpecialTokens?: boolean
}

// ---------------------------------------------------------------------------------------------------------------
// Per-code-point character classes, computed lazily (one regex test per distinct code point, ever) and cached.
// ---------------------------------------------------------------------------------------------------------------

const C_KNOWN = 1 // entry has been computed
const C_DROP = 2 // removed by clean_text: NUL, U+FFFD, Cc/Cf/Co (not \t \n \r), lone surrogates
const C_WS = 4 // whitespace (\t \n \r or White_Space), mapped to ' '
const C_CJK = 8 // CJK ideograph padded by handle_chinese_chars
const C_PUNCT = 16 // BertPreTokenizer punctuation

const RE_OTHER = /^[\p{Cc}\p{Cf}\p{Co}\p{Cs}]$/u
const RE_WS = /^\p{White_Space}$/u
const RE_PUNCT = /^\p{P}$/u

const classTable = new Uint8Array(0x110000)

/** HF's `is_chinese_char` ranges (tokenizers/src/normalizers/bert.rs). Note 0x2B920, not Python BERT's 0x2B820. */
function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  )
}

function computeClass(cp: number): number {
  let f = C_KNOWN
  const ch = String.fromCodePoint(cp)
  if (cp === 0x09 || cp === 0x0a || cp === 0x0d) {
    f |= C_WS
  } else if (cp === 0 || cp === 0xfffd || RE_OTHER.test(ch)) {
    // Rust's `is_other` (unicode_categories) = Cc | Cf | Co. Lone surrogates (Cs) cannot occur in a Rust
    // string at all; dropping them is the closest behaviour.
    f |= C_DROP
  } else if (RE_WS.test(ch)) {
    f |= C_WS
  }
  if (isChineseChar(cp)) f |= C_CJK
  // Rust's `char::is_ascii_punctuation` covers ASCII 33-47, 58-64, 91-96, 123-126 (symbols like $ + < = > ^ ` | ~
  // included); beyond ASCII, Unicode general category P*.
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) {
    f |= C_PUNCT
  } else if (cp >= 128 && RE_PUNCT.test(ch)) {
    f |= C_PUNCT
  }
  return f
}

function charClass(cp: number): number {
  let f = classTable[cp]
  if (f === 0) {
    f = computeClass(cp)
    classTable[cp] = f
  }
  return f
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the range is all of ASCII, control characters included
const RE_NON_ASCII = /[^\x00-\x7f]/
const RE_MN = /\p{Mn}/u
const RE_MN_G = /\p{Mn}/gu
const CAPITAL_SIGMA = '\u03a3'

/** Lowercase one code point at a time, as Rust's `char::to_lowercase` (JS would apply the final-sigma rule). */
function lowercasePerCodePoint(s: string): string {
  let out = ''
  for (const ch of s) out += ch.toLowerCase()
  return out
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

const CHUNK_CACHE_LIMIT = 100_000
const CHUNK_CACHE_MAX_LENGTH = 64

/**
 * BERT's WordPiece over a vocab.txt, our own port of HF's BertWordPieceTokenizer (the same ids, faster than a
 * tokenizer.json through HF's tokenizers for JavaScript): used for model folders that have a vocab.txt.
 */
export class WordPieceTokenizer implements Tokenizer {
  /** WordPiece drops whitespace: a label word's ids never depend on a space before it. */
  readonly spaceSensitive = false
  /** Number of ids: the number of vocabulary lines (21,128 for bert-base-chinese). */
  readonly vocabSize: number

  private readonly idToTokenTable: readonly string[]
  private readonly vocab: Map<string, number>
  private readonly lowercase: boolean
  private readonly stripAccents: boolean
  private readonly handleChineseChars: boolean
  private readonly maxInputCharsPerWord: number
  private readonly unkToken: string
  private readonly prefix: string
  /** Longest vocabulary entry in UTF-16 units: no piece can be longer, so matching starts there. */
  private readonly maxPieceLength: number
  private readonly specialRe: RegExp | null
  private readonly specialTokens: ReadonlyMap<string, number>
  /** Ids of chunks of raw text (see encodeSegment); cleared when it grows past CHUNK_CACHE_LIMIT. */
  private readonly chunkCache = new Map<string, readonly number[]>()
  /** Id of each lone BMP CJK ideograph, -1 until computed; astral ones in a Map. */
  private readonly bmpCharIds = new Int32Array(0x10000).fill(-1)
  private readonly astralCharIds = new Map<number, number>()

  /**
   * Read a vocab.txt (one token a line, id = line index). Lines are read as HF's `WordPiece::read_file` does:
   * split on \n, trailing whitespace (including \r) trimmed, so the line " " is the token "".
   */
  static fromFile(vocabPath: string, options?: WordPieceOptions): WordPieceTokenizer {
    let text: string
    try {
      text = fs.readFileSync(vocabPath, 'utf8')
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err)
      throw new Error(`WordPiece vocabulary file "${vocabPath}" cannot be read: ${reason}`)
    }
    const lines = text.split('\n')
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop() // the newline ending the last line
    if (lines.length === 0 || lines.every((l) => l.trim() === '')) {
      throw new Error(`WordPiece vocabulary file "${vocabPath}" is empty`)
    }
    return new WordPieceTokenizer(
      lines.map((l) => l.trimEnd()),
      options,
    )
  }

  constructor(vocab: readonly string[], options: WordPieceOptions = {}) {
    if (vocab.length === 0) throw new Error('WordPiece vocabulary is empty')
    this.idToTokenTable = vocab.slice()
    this.vocabSize = vocab.length
    this.vocab = new Map()
    let maxLen = 1
    vocab.forEach((tok, id) => {
      this.vocab.set(tok, id) // a duplicate line takes the later id, as HF's HashMap insert does
      if (tok.length > maxLen) maxLen = tok.length
    })
    this.maxPieceLength = maxLen

    this.lowercase = options.lowercase ?? true
    this.stripAccents = options.stripAccents ?? this.lowercase
    this.handleChineseChars = options.handleChineseChars ?? true
    this.maxInputCharsPerWord = options.maxInputCharsPerWord ?? 100
    this.unkToken = options.unkToken ?? '[UNK]'
    this.prefix = options.continuingSubwordPrefix ?? '##'

    // BertWordPieceTokenizer registers these as special tokens when they are in the vocabulary.
    const specials = new Map<string, number>()
    for (const tok of [this.unkToken, '[SEP]', '[CLS]', '[PAD]', '[MASK]']) {
      const id = this.vocab.get(tok)
      if (id !== undefined && tok.length > 0) specials.set(tok, id)
    }
    this.specialTokens = specials
    if ((options.splitSpecialTokens ?? true) && specials.size > 0) {
      // Longest first, so that at any one position the alternation takes the longest match (leftmost-longest).
      const alts = [...specials.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp)
      this.specialRe = new RegExp(alts.join('|'), 'g')
    } else {
      this.specialRe = null
    }
  }

  get clsId(): number {
    return this.specialId('[CLS]')
  }
  get sepId(): number {
    return this.specialId('[SEP]')
  }
  get maskId(): number {
    return this.specialId('[MASK]')
  }
  get padId(): number {
    return this.specialId('[PAD]')
  }
  get unkId(): number {
    return this.specialId(this.unkToken)
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token)
  }

  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 && id < this.idToTokenTable.length ? this.idToTokenTable[id] : undefined
  }

  /** The id of a token that must be in the vocabulary (e.g. '[MASK]'); throws naming the token otherwise. */
  specialId(token: string): number {
    const id = this.vocab.get(token)
    if (id === undefined) throw new Error(`token "${token}" is not in the WordPiece vocabulary`)
    return id
  }

  /** Prompt token n is the vocabulary's own [unusedN]. */
  promptTokenId(n: number): number {
    return this.specialId(`[unused${n}]`)
  }

  /** Word pieces of plain text; no [CLS]/[SEP] are added. */
  tokenize(text: string): string[] {
    const ids = this.encode(text)
    const out = new Array<string>(ids.length)
    for (let i = 0; i < ids.length; i++) out[i] = this.idToTokenTable[ids[i]]
    return out
  }

  /** Ids of `tokenize(text)`; no [CLS]/[SEP] are added. */
  encode(text: string): number[] {
    const out: number[] = []
    const re = this.specialRe
    if (re === null || (text.indexOf('[') < 0 && !this.hasSpecialStart(text))) {
      this.encodeSegment(text, out)
      return out
    }
    re.lastIndex = 0
    let last = 0
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      if (m.index > last) this.encodeSegment(text.slice(last, m.index), out)
      out.push(this.specialTokens.get(m[0]) as number)
      last = m.index + m[0].length
    }
    if (last < text.length) this.encodeSegment(text.slice(last), out)
    return out
  }

  /** Only needed when a custom unk token does not start with '['. */
  private hasSpecialStart(text: string): boolean {
    for (const tok of this.specialTokens.keys()) if (tok[0] !== '[' && text.includes(tok)) return true
    return false
  }

  /**
   * Normalize, pre-tokenize and WordPiece one segment (free of special tokens), appending ids to `out`.
   *
   * One pass over the raw text does clean_text and handle_chinese_chars and cuts the text into chunks at
   * whitespace and at CJK ideographs; each chunk is then accent-stripped, lowercased, split at punctuation and
   * WordPiece'd. This equals HF's whole-string order (clean, pad CJK, NFD + drop Mn, lowercase, split) because
   * every one of those steps works character by character and never creates or removes whitespace or CJK chars
   * (the CJK compatibility ideographs that NFD maps to unified ones are padded either way).
   */
  private encodeSegment(s: string, out: number[]): void {
    const n = s.length
    const padCjk = this.handleChineseChars
    let chunkStart = 0 // start of the not yet copied part of the current chunk
    let pending = '' // earlier parts of the current chunk, when dropped chars cut it
    for (let i = 0; i < n; ) {
      const c = s.charCodeAt(i)
      if (c > 0x20 && c < 0x7f) {
        i += 1 // printable ASCII: never dropped, whitespace or CJK
        continue
      }
      const cp = c < 0xd800 || c > 0xdbff ? c : s.codePointAt(i)! // a lone surrogate stays itself
      const w = cp > 0xffff ? 2 : 1
      const f = charClass(cp)
      if (f & C_DROP) {
        pending += s.slice(chunkStart, i)
        chunkStart = i + w
      } else if (f & C_WS || (padCjk && f & C_CJK)) {
        if (i > chunkStart || pending.length > 0) {
          this.encodeChunk(pending + s.slice(chunkStart, i), out)
          pending = ''
        }
        if (!(f & C_WS)) out.push(this.cjkId(cp))
        chunkStart = i + w
      }
      i += w
    }
    if (n > chunkStart || pending.length > 0) this.encodeChunk(pending + s.slice(chunkStart), out)
  }

  /** Id of a lone CJK ideograph (cached per code point). */
  private cjkId(cp: number): number {
    if (cp < 0x10000) {
      const id = this.bmpCharIds[cp]
      if (id >= 0) return id
    } else {
      const id = this.astralCharIds.get(cp)
      if (id !== undefined) return id
    }
    const tmp: number[] = []
    this.encodeChunk(String.fromCodePoint(cp), tmp)
    const id = tmp.length === 1 ? tmp[0] : this.unkId // always one id: the char (after NFD) or the unk token
    if (cp < 0x10000) this.bmpCharIds[cp] = id
    else this.astralCharIds.set(cp, id)
    return id
  }

  /** Ids of a chunk (cleaned text without whitespace or CJK ideographs), cached. */
  private encodeChunk(chunk: string, out: number[]): void {
    let ids = this.chunkCache.get(chunk)
    if (ids === undefined) {
      const tmp: number[] = []
      this.encodeNormalized(this.normalizeChunk(chunk), tmp)
      ids = tmp
      if (chunk.length <= CHUNK_CACHE_MAX_LENGTH) {
        if (this.chunkCache.size >= CHUNK_CACHE_LIMIT) this.chunkCache.clear()
        this.chunkCache.set(chunk, ids)
      }
    }
    for (let k = 0; k < ids.length; k++) out.push(ids[k])
  }

  /** Strip accents (NFD, drop Mn) and lowercase, in HF's order. */
  private normalizeChunk(chunk: string): string {
    let t = chunk
    if (this.stripAccents && RE_NON_ASCII.test(t)) {
      t = t.normalize('NFD')
      if (RE_MN.test(t)) t = t.replace(RE_MN_G, '')
    }
    if (this.lowercase) t = t.includes(CAPITAL_SIGMA) ? lowercasePerCodePoint(t) : t.toLowerCase()
    return t
  }

  /** BertPreTokenizer (split on whitespace, isolate punctuation) + WordPiece on normalized text. */
  private encodeNormalized(s: string, out: number[]): void {
    const n = s.length
    let wordStart = -1
    for (let i = 0; i < n; ) {
      const c = s.charCodeAt(i)
      const cp = c < 0xd800 || c > 0xdbff ? c : s.codePointAt(i)! // a lone surrogate stays itself
      const w = cp > 0xffff ? 2 : 1
      let f: number
      if (cp === 0x20) f = C_WS
      else if ((cp >= 0x30 && cp <= 0x39) || (cp >= 0x61 && cp <= 0x7a) || (cp >= 0x41 && cp <= 0x5a)) f = 0
      else f = charClass(cp)
      if (f & (C_WS | C_PUNCT)) {
        if (wordStart >= 0) {
          this.wordPiece(s.slice(wordStart, i), out)
          wordStart = -1
        }
        if (f & C_PUNCT && !(f & C_WS)) this.wordPiece(s.slice(i, i + w), out)
      } else if (wordStart < 0) {
        wordStart = i
      }
      i += w
    }
    if (wordStart >= 0) this.wordPiece(s.slice(wordStart), out)
  }

  /** WordPiece one pre-tokenized word, appending its ids to `out`. */
  private wordPiece(word: string, out: number[]): void {
    const ids = this.wordPieceUncached(word)
    for (let k = 0; k < ids.length; k++) out.push(ids[k])
  }

  private wordPieceUncached(word: string): number[] {
    const n = word.length
    if (n > this.maxInputCharsPerWord && countCodePoints(word) > this.maxInputCharsPerWord) return [this.unkId]
    const ids: number[] = []
    let start = 0
    while (start < n) {
      let end = Math.min(n, start + this.maxPieceLength)
      if (end < n && isLowSurrogate(word.charCodeAt(end)) && isHighSurrogate(word.charCodeAt(end - 1))) end -= 1
      let found = -1
      while (end > start) {
        const piece = start > 0 ? this.prefix + word.slice(start, end) : word.slice(start, end)
        const id = this.vocab.get(piece)
        if (id !== undefined) {
          found = id
          break
        }
        end -= end - start >= 2 && isLowSurrogate(word.charCodeAt(end - 1)) && isHighSurrogate(word.charCodeAt(end - 2)) ? 2 : 1
      }
      if (found < 0) return [this.unkId]
      ids.push(found)
      start = end
    }
    return ids
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff
}

function countCodePoints(s: string): number {
  let count = 0
  for (let i = 0; i < s.length; i++) {
    if (!(isLowSurrogate(s.charCodeAt(i)) && i > 0 && isHighSurrogate(s.charCodeAt(i - 1)))) count++
  }
  return count
}
