// A model folder read without its weights: config.json (through the native core's own parser, so the family and
// sizes are those a load would find) and the tokenizer. For the workflows that need only these before training
// (token ids, the family, the position limit), so that they do not load a model just to read them.
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { NativeConfig, NativeFamily } from '../bindings'
import { nativeError, PetError } from './errors'
import { native } from './native'
import { HfTokenizer } from './tokenizer/hf-tokenizer'
import type { Tokenizer } from './tokenizer/tokenizer'
import { WordPieceTokenizer } from './tokenizer/wordpiece'

/** What encoding and step building read of a model: a ModelFolder, or a loaded MaskedLM. */
export type ModelView = Pick<ModelFolder, 'tokenizer' | 'maxPositions' | 'isCausal' | 'config'>

export class ModelFolder {
  private constructor (readonly dir: string, readonly config: NativeConfig, readonly tokenizer: Tokenizer) {}

  /**
   * Checks the folder, its tokenizer and its config.json (an unknown architecture names the supported ones). The
   * tokenizer: vocab.txt (BERT WordPiece, our own exact port) when present, else tokenizer.json (any HF tokenizer).
   */
  static read (dir: string): ModelFolder {
    const abs = path.resolve(dir)
    if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) throw new PetError(`model directory not found: ${abs}`, 'ENOENT')
    const tokenizer = readTokenizer(abs)
    let config: NativeConfig
    try {
      config = native().readConfig(abs)
    } catch (err) {
      throw nativeError(err)
    }
    // <=: RoBERTa-style checkpoints pad the embedding table beyond the tokenizer's ids
    if (tokenizer.vocabSize > config.vocabSize) {
      const file = tokenizer instanceof WordPieceTokenizer ? 'vocab.txt' : 'tokenizer.json'
      throw new PetError(`${abs}: ${file} has ${tokenizer.vocabSize} entries but config.json says vocab_size ${config.vocabSize}`, 'EMODEL')
    }
    return new ModelFolder(abs, config, tokenizer)
  }

  /** the longest sequence the position table allows (RoBERTa: less its padding offset) */
  get maxPositions (): number { return this.config.maxPositionEmbeddings - this.config.positionOffset }
  /** 'bert' (a masked LM: answers at [MASK]) or 'gpt2' (a causal LM: answers as the continuation of a prefix) */
  get family (): NativeFamily { return this.config.family }
  /** a left-to-right LM: a token sees only what precedes it */
  get isCausal (): boolean { return this.family === 'gpt2' }
}

/**
 * The tokenizer of a model folder, the one place that chooses it: vocab.txt → our WordPiece, else tokenizer.json (any
 * HF tokenizer). `splitSpecialTokens` (default false: what pattern filling needs, user text never parsed for special
 * tokens) is WordPiece's option: true cuts "[MASK]" typed in the text out as that token, as HF does (tokenize()).
 * An HfTokenizer does both itself (encode() keeps text plain, encodeWithSpecials() is HF's).
 */
export function readTokenizer (dir: string, options: { splitSpecialTokens?: boolean } = {}): Tokenizer {
  const vocab = path.join(dir, 'vocab.txt')
  if (fs.existsSync(vocab)) return WordPieceTokenizer.fromFile(vocab, { splitSpecialTokens: options.splitSpecialTokens ?? false })
  if (fs.existsSync(path.join(dir, 'tokenizer.json'))) return HfTokenizer.fromDir(dir)
  throw new PetError(`${dir}: no vocab.txt and no tokenizer.json (the model's tokenizer is needed)`, 'ENOENT')
}
