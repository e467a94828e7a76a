// A BERT masked-language model: the native core plus the tokenizer of its directory.
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { NativeBatch, NativeModel, NativeModelInfo } from '../bindings'
import { nativeError, PetError } from './errors'
import { native, packageRoot } from './native'
import { WordPieceTokenizer } from './tokenizer/wordpiece'
import * as v from './validate'

export const defaultModelDir = path.join(packageRoot, 'models', 'zh-mini-mlm')

export interface LoadOptions {
  /** 'cpu' (default), 'cuda', 'cuda:N' */
  device: string
  /** intra-op threads; default: all cores (or PET_MLM_THREADS) */
  threads?: number
}

export class MaskedLM {
  readonly dir: string
  readonly tokenizer: WordPieceTokenizer
  readonly info: NativeModelInfo
  /** @internal the native model; lib/ code only */
  readonly core: NativeModel

  private constructor (dir: string, core: NativeModel, tokenizer: WordPieceTokenizer) {
    this.dir = dir
    this.core = core
    this.tokenizer = tokenizer
    this.info = core.info()
  }

  /** Loads an HF BERT MLM directory (config.json, vocab.txt, safetensors or pytorch_model.bin). */
  static async load (dir: string = defaultModelDir, options?: Partial<LoadOptions>): Promise<MaskedLM> {
    v.string(dir, 'model directory')
    const opts = v.options<LoadOptions>(options, 'load options', { device: 'cpu' }, {
      device: (x, n) => v.string(x, n),
      threads: (x, n) => v.integer(x, n, 1, 1024)
    })
    const abs = path.resolve(dir)
    if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) throw new PetError(`model directory not found: ${abs}`, 'ENOENT')
    const vocab = path.join(abs, 'vocab.txt')
    if (!fs.existsSync(vocab)) throw new PetError(`${abs}: no vocab.txt (a BERT WordPiece vocabulary is needed)`, 'ENOENT')
    const tokenizer = WordPieceTokenizer.fromFile(vocab, { splitSpecialTokens: false })
    const addon = native()
    let core: NativeModel
    try {
      core = await addon.NativeModel.load(abs, { device: opts.device, threads: opts.threads })
    } catch (err) {
      throw nativeError(err)
    }
    const model = new MaskedLM(abs, core, tokenizer)
    if (model.info.config.vocabSize !== tokenizer.vocabSize) {
      core.dispose()
      throw new PetError(`${abs}: vocab.txt has ${tokenizer.vocabSize} entries but config.json says vocab_size ${model.info.config.vocabSize}`, 'EMODEL')
    }
    return model
  }

  get maxPositions (): number { return this.info.config.maxPositionEmbeddings }

  /** Candidate logits and log-normalisers at positions of one padded batch. */
  async scoreCandidates (batch: NativeBatch, positions: Int32Array, candidates: readonly number[]) {
    try {
      return await this.core.scoreCandidates(batch, positions, Int32Array.from(candidates), candidates.length)
    } catch (err) {
      throw nativeError(err)
    }
  }

  /** Full-vocabulary logits [positions, vocab] of one padded batch. */
  async logitsAt (batch: NativeBatch, positions: Int32Array): Promise<Float32Array> {
    try {
      return await this.core.logitsAt(batch, positions)
    } catch (err) {
      throw nativeError(err)
    }
  }

  async hiddenStates (batch: NativeBatch, layer: 'last' | 'embeddings' = 'last'): Promise<Float32Array> {
    try {
      return await this.core.hiddenStates(batch, layer)
    } catch (err) {
      throw nativeError(err)
    }
  }

  /** Saves config.json, safetensors weights and the tokenizer files: an HF-loadable directory. */
  async save (dir: string, options: { maxShardBytes?: number } = {}): Promise<void> {
    v.string(dir, 'output directory')
    try {
      await this.core.save(path.resolve(dir), options)
    } catch (err) {
      throw nativeError(err)
    }
  }

  dispose (): void { this.core.dispose() }
}
