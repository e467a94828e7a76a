// What the rest of the library reads of a tokenizer: BERT's WordPiece (vocab.txt, our own port) and any
// tokenizer.json (through @huggingface/tokenizers) both give it.

/** A tokenizer as the library uses it: special-token ids, plain-text encoding and the P-tuning prompt ids. */
export interface Tokenizer {
  /** number of ids the tokenizer can produce (<= the model's vocab_size: some checkpoints pad the embedding table) */
  readonly vocabSize: number
  readonly padId: number
  readonly clsId: number
  readonly sepId: number
  readonly maskId: number
  readonly unkId: number
  /**
   * True when whitespace belongs to the next token (byte-level BPE "Ġgood", Metaspace "▁good"): a label word's
   * ids then depend on whether a space precedes it in the pattern (see labelWordIds in pet/pattern.ts).
   */
  readonly spaceSensitive: boolean
  /** the id of a token that must exist ('[SEP]', '<mask>', '[unused3]'): throws a PetError naming it otherwise */
  specialId (token: string): number
  tokenToId (token: string): number | undefined
  idToToken (id: number): string | undefined
  /** ids of plain text (no [CLS]/[SEP] added; a special token typed in the text stays text) */
  encode (text: string): number[]
  tokenize (text: string): string[]
  /**
   * The id of P-tuning prompt token n (1-based), written [unusedN] in patterns: the vocabulary's own [unusedN]
   * where it has one; otherwise the n-th id counted back from the end of the vocabulary, skipping special tokens
   * (BPE/Unigram vocabularies have no unused entries; their last merges are the rarest pieces).
   */
  promptTokenId (n: number): number
}
