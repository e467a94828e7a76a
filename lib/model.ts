// A BERT masked-language model: the native core plus the tokenizer of its directory.
import * as path from 'node:path'
import type { NativeBatch, NativeCandidateScores, NativeConfig, NativeFamily, NativeKernels, NativeLoss, NativeModel, NativeModelInfo, NativeOptimOptions, NativePrecision, NativeStepResult, NativeTrainable } from '../bindings'
import { ModelFolder } from './model-folder'
import { kernelChoices, optionTable, precisions, schedules } from './options'
import { nativeError, PetError } from './errors'
import { native, packageRoot } from './native'
import type { Tokenizer } from './tokenizer/tokenizer'
import * as v from './validate'

/** The bundled model's folder, models/zh-mini-mlm (4 layers, hidden 256): the default `model` everywhere. */
export const defaultModelDir = path.join(packageRoot, 'models', 'zh-mini-mlm')


/** How MaskedLM.load runs the model: device, threads, precision and the CPU inference kernels. */
export interface LoadOptions {
  /** 'cpu' (default), 'cuda', 'cuda:N' */
  device: string
  /** intra-op threads; default: all cores (or PET_MLM_THREADS) */
  threads?: number
  /** 'fp32' (default) or 'bf16': GEMMs in bf16 (oneDNN on CPU, autocast on CUDA) for scoring and training;
   * LayerNorm, softmax, the residual stream, the vocabulary's log-softmax and the master weights stay fp32 */
  precision?: NativePrecision
  /** CPU inference: 'tasks' (default) or 'plain' (one plain forward pass, for comparisons) */
  schedule?: 'tasks' | 'plain'
  /** CPU inference: the layer's dense steps and attention through oneDNN directly ('onednn', the default where the
   * build can: `systemInfo().onednn`) or through ATen's ops ('aten', for comparisons); fp32 results agree to ~1e-6 */
  kernels?: NativeKernels
}

/**
 * A Hugging Face masked (BERT family) or causal (GPT-2) LM in the native core, with typed methods: scoring at given
 * positions, logits, hidden states, the training primitives, saving. Loaded by `MaskedLM.load(dir)`; `dispose()` frees it.
 */
export class MaskedLM {
  readonly dir: string
  readonly tokenizer: Tokenizer
  readonly info: NativeModelInfo
  readonly #core: NativeModel

  /** the folder it was loaded from: config and tokenizer */
  readonly folder: ModelFolder

  private constructor (folder: ModelFolder, core: NativeModel) {
    this.folder = folder
    this.dir = folder.dir
    this.#core = core
    this.tokenizer = folder.tokenizer
    this.info = core.info()
  }

  /** Loads an HF BERT MLM directory (config.json, vocab.txt, safetensors or pytorch_model.bin). */
  static async load (dir: string = defaultModelDir, options?: Partial<LoadOptions>): Promise<MaskedLM> {
    v.string(dir, 'model directory')
    const opts = v.options<LoadOptions>(options, 'load options', { device: 'cpu' }, {
      device: (x, n) => v.string(x, n),
      threads: (x, n) => v.integer(x, n, optionTable.threads.min, optionTable.threads.max),
      precision: (x, n) => v.oneOf(x, n, precisions),
      schedule: (x, n) => v.oneOf(x, n, schedules),
      kernels: (x, n) => v.oneOf(x, n, kernelChoices)
    })
    const folder = ModelFolder.read(dir)
    const addon = native()
    if (opts.kernels === 'onednn' && addon.onednnVersion === '') {
      throw new PetError("kernels 'onednn': this build does not call oneDNN directly (it needs oneDNN's headers, " +
        "Debian's libdnnl-dev, when the addon is built, beside a LibTorch that links that oneDNN)", 'EINVAL')
    }
    let core: NativeModel
    try {
      core = await addon.NativeModel.load(folder.dir, { device: opts.device, threads: opts.threads, precision: opts.precision, schedule: opts.schedule, kernels: opts.kernels })
    } catch (err) {
      throw nativeError(err)
    }
    return new MaskedLM(folder, core)
  }

  get config (): NativeConfig { return this.folder.config }
  get maxPositions (): number { return this.folder.maxPositions }
  /** 'bert' (a masked LM: answers at [MASK]) or 'gpt2' (a causal LM: answers as the continuation of a prefix) */
  get family (): NativeFamily { return this.folder.family }
  /** a left-to-right LM: a token sees only what precedes it */
  get isCausal (): boolean { return this.folder.isCausal }
  /** of the GEMMs in scoring, and the default of training (setTrainable) */
  get precision (): NativePrecision { return this.#core.info().precision }

  /**
   * Candidate logits and log-normalisers at (row, column) positions of one padded batch: `candidates` shared by
   * every position, or with `numCandidates` C a list of C per position ([positions, C]).
   */
  scoreCandidates (batch: NativeBatch, positions: Int32Array, candidates: readonly number[], numCandidates = candidates.length): Promise<NativeCandidateScores> {
    return this.callAsync(m => m.scoreCandidates(batch, positions, Int32Array.from(candidates), numCandidates))
  }

  /** Full-vocabulary logits [positions, vocab] of one padded batch. */
  logitsAt (batch: NativeBatch, positions: Int32Array): Promise<Float32Array> {
    return this.callAsync(m => m.logitsAt(batch, positions))
  }

  /** [batch, seq, hidden] hidden states of the last layer (or the embeddings). */
  hiddenStates (batch: NativeBatch, layer: 'last' | 'embeddings' = 'last'): Promise<Float32Array> {
    return this.callAsync(m => m.hiddenStates(batch, layer))
  }

  /** Saves config.json, safetensors weights and the tokenizer files: an HF-loadable directory. */
  async save (dir: string, options: { maxShardBytes?: number } = {}): Promise<void> {
    v.string(dir, 'output directory')
    return this.callAsync(m => m.save(path.resolve(dir), options))
  }

  /** What trains and how (AdamW, schedule, clipping); returns the number of trainable values. */
  setTrainable (spec: NativeTrainable, optim?: NativeOptimOptions): number {
    return this.call(m => m.setTrainable(spec, { precision: this.precision, ...optim }))
  }
  /** One optimizer step on one batch; `context` (e.g. "epoch 2, step 3") prefixes a native error. */
  trainStep (batch: NativeBatch, loss: NativeLoss, context?: string): Promise<NativeStepResult> { return this.callAsync(m => m.trainStep(batch, loss), context) }
  /**
   * Distributed training's step: this rank's share of the global batch (null: an empty share), its gradients
   * all-reduced with the other ranks'. `stop` on any rank makes every rank return `stopped` without a step.
   */
  trainShare (batch: NativeBatch | null, loss: NativeLoss | null, stop: boolean, context?: string): Promise<NativeStepResult> {
    return this.callAsync(m => m.trainStep(batch, loss, { stop }), context)
  }
  /** The loss and the gradients of the trainable tensors, without a step. */
  lossAndGrads (batch: NativeBatch, loss: NativeLoss, train: boolean): Promise<NativeStepResult & { grads: Record<string, Float32Array> }> {
    return this.callAsync(m => m.lossAndGrads(batch, loss, train))
  }

  /** The optimizer's moments, step counter and RNG, for resuming (written atomically). */
  saveTrainerState (file: string): Promise<void> { return this.callAsync(m => m.saveTrainerState(file)) }
  loadTrainerState (file: string): Promise<void> { return this.callAsync(m => m.loadTrainerState(file)) }

  /** The prompt encoder's current output rows; null without one. */
  inputRows (): { rows: Int32Array, values: Float32Array } | null { return this.call(m => m.inputRows()) }
  /** Sets (or with null clears) input-side replacement embeddings [rows, hidden]. */
  setInputRows (rows: Int32Array | null, values?: Float32Array): void { this.call(m => m.setInputRows(rows, values)) }
  /** Writes rows of the word-embedding matrix (input and tied output side). */
  setEmbeddingRows (rows: Int32Array, values: Float32Array): void { this.call(m => m.setEmbeddingRows(rows, values)) }
  /** The prompt encoder's tensors by name (prompt_encoder.*), empty without one. */
  promptEncoderTensors (): Record<string, { shape: number[], data: Float32Array }> { return this.call(m => m.promptEncoderTensors()) }

  /** Adds a [CLS] classifier head (or adopts the checkpoint's own: returns true); before setTrainable. */
  addClassifier (numLabels: number, seed?: number): boolean {
    v.integer(numLabels, 'numLabels', 2, 1 << 20)
    return this.call(m => m.addClassifier(numLabels, seed))
  }

  /** [batch, numLabels] classifier logits. */
  classify (batch: NativeBatch): Promise<Float32Array> { return this.callAsync(m => m.classify(batch)) }

  tensorNames (): string[] { return this.call(m => m.tensorNames()) }
  getTensor (name: string): { shape: number[], data: Float32Array } {
    v.string(name, 'tensor name')
    return this.call(m => m.getTensor(name))
  }

  /** The precision of scoring from now on (and the default of later setTrainable calls). */
  setInferenceOptions (options: { bf16?: boolean, precision?: NativePrecision }): void {
    if (options.precision !== undefined) v.oneOf(options.precision, 'precision', precisions)
    this.call(m => m.setInferenceOptions(options))
  }

  /** Frees the weights; later calls fail with a PetError. Safe to call twice. */
  dispose (): void { this.#core.dispose() }

  /** Every synchronous native call goes through here, so that whatever it throws is a PetError. */
  private call<R> (f: (m: NativeModel) => R): R {
    try {
      return f(this.#core)
    } catch (err) {
      throw nativeError(err)
    }
  }

  /** Every asynchronous one through here: a bad argument rejects (never throws), always with a PetError. */
  private async callAsync<R> (f: (m: NativeModel) => Promise<R>, context?: string): Promise<R> {
    try {
      return await f(this.#core)
    } catch (err) {
      throw nativeError(err, context)
    }
  }
}
