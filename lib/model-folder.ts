// A model folder read without its weights: config.json (through the native core's own parser, so the family and
// sizes are those a load would find) and the tokenizer. For the workflows that need only these before training
// (token ids, the family, the position limit), so that they do not load a model just to read them.
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { NativeConfig, NativeFamily } from '../bindings'
import { nativeError, PetError } from './errors'
import { native } from './native'
import { WordPieceTokenizer } from './tokenizer/wordpiece'

/** What encoding and step building read of a model: a ModelFolder, or a loaded MaskedLM. */
export type ModelView = Pick<ModelFolder, 'tokenizer' | 'maxPositions' | 'isCausal' | 'config'>

export class ModelFolder {
  private constructor (readonly dir: string, readonly config: NativeConfig, readonly tokenizer: WordPieceTokenizer) {}

  /** Checks the folder, its vocab.txt and its config.json (an unknown architecture names the supported ones). */
  static read (dir: string): ModelFolder {
    const abs = path.resolve(dir)
    if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) throw new PetError(`model directory not found: ${abs}`, 'ENOENT')
    const vocab = path.join(abs, 'vocab.txt')
    if (!fs.existsSync(vocab)) throw new PetError(`${abs}: no vocab.txt (a BERT WordPiece vocabulary is needed)`, 'ENOENT')
    const tokenizer = WordPieceTokenizer.fromFile(vocab, { splitSpecialTokens: false })
    let config: NativeConfig
    try {
      config = native().readConfig(abs)
    } catch (err) {
      throw nativeError(err)
    }
    if (config.vocabSize !== tokenizer.vocabSize) {
      throw new PetError(`${abs}: vocab.txt has ${tokenizer.vocabSize} entries but config.json says vocab_size ${config.vocabSize}`, 'EMODEL')
    }
    return new ModelFolder(abs, config, tokenizer)
  }

  get maxPositions (): number { return this.config.maxPositionEmbeddings }
  /** 'bert' (a masked LM: answers at [MASK]) or 'gpt2' (a causal LM: answers as the continuation of a prefix) */
  get family (): NativeFamily { return this.config.family }
  /** a left-to-right LM: a token sees only what precedes it */
  get isCausal (): boolean { return this.family === 'gpt2' }
}
