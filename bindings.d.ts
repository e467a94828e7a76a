// The exact surface of the native addon (build/Release/pet_mlm.node). Only lib/native.ts imports it; everything
// else goes through lib/. Int32Array inputs are copied on the call; outputs are fresh Float32Arrays.

/** One padded batch, row-major [batchSize, seqLen]. */
export interface NativeBatch {
  inputIds: Int32Array
  tokenTypeIds?: Int32Array
  attentionMask?: Int32Array
  /** [batch, seq]: each token's position (default 0, 1, 2, ...) */
  positionIds?: Int32Array
  /** [batch, seq]: attention branches: a token of branch k > 0 sees the shared tokens (0) and its own branch only
   * (several continuations of one prefix in one pass; with a causal LM, each sees the prefix's keys and values) */
  branchIds?: Int32Array
  batchSize: number
  seqLen: number
}

/** How NativeModel.load places and runs a model: the device, intra-op threads, inference precision and CPU kernels. */
export interface NativeLoadOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:N' */
  device?: string
  /** intra-op threads (at::set_num_threads); 0 or absent leaves the current setting */
  threads?: number
  /** of the encoder's GEMMs in inference (bf16: oneDNN on CPU, autocast on CUDA); default 'fp32' */
  precision?: NativePrecision
  /** CPU inference: the layer kernel in tasks on the thread pool (default) or one plain pass (for comparisons) */
  schedule?: 'tasks' | 'plain'
  /** CPU inference: the layer's dense steps and attention through oneDNN directly (default where the build can:
   * onednnVersion is set) or through ATen's ops (for comparisons) */
  kernels?: NativeKernels
}

/** What CPU inference's layer steps run on: oneDNN's primitives called directly, or ATen's ops. */
export type NativeKernels = 'onednn' | 'aten' 

/** fp32, or bf16 GEMMs with fp32 LayerNorm, softmax, residual stream and master weights */
export type NativePrecision = 'fp32' | 'bf16'


/** The checkpoint families the native core loads (config.json's model_type): five masked LMs and GPT-2. */
export type NativeFamily = 'bert' | 'roberta' | 'xlm-roberta' | 'albert' | 'ernie' | 'gpt2'

/** A model folder's config.json, read and checked as a load reads it (family, sizes, names). */
export interface NativeConfig {
  /** the checkpoint family: a masked LM ('bert', 'roberta', 'xlm-roberta', 'albert', 'ernie': *ForMaskedLM) or 'gpt2' (GPT2LMHeadModel) */
  family: NativeFamily
  /** the name of the word-embedding matrix [vocab, hidden] (getTensor), e.g. 'transformer.wte.weight' */
  wordEmbeddings: string
  /** the name of the learned position embeddings [positions, hidden] */
  positionEmbeddings: string
  vocabSize: number
  hiddenSize: number
  /** width of the word embeddings (and of prompt rows): hiddenSize except ALBERT's factorised embeddings */
  embeddingSize: number
  /** RoBERTa/XLM-R: positions start after the padding id; usable length = maxPositionEmbeddings - positionOffset */
  positionOffset: number
  numHiddenLayers: number
  numAttentionHeads: number
  intermediateSize: number
  maxPositionEmbeddings: number
  typeVocabSize: number
  tieWordEmbeddings: boolean
  /** config.json as read, re-serialised */
  raw: string
}

/** What a loaded model is: its config, device, checkpoint format and files, the tensors it left unused, how it runs. */
export interface NativeModelInfo {
  config: NativeConfig
  device: string
  /** 'safetensors' | 'safetensors-sharded' | 'pytorch' | 'pytorch-sharded' */
  format: string
  files: string[]
  /** tensors of the checkpoint the MLM does not use (kept when saving) */
  unexpected: string[]
  /** tensors dropped on purpose: a tied decoder, a duplicate decoder bias */
  ignored: string[]
  threads: number
  /** of inference: the load option, or setInferenceOptions' */
  precision: NativePrecision
  /** what CPU inference's layer steps run on (the load option; 'aten' on other devices) */
  kernels: NativeKernels
}

/** The logits of chosen candidate tokens at each scored position, and each position's log-normaliser (logZ). */
export interface NativeCandidateScores {
  /** [positions, numCandidates] raw logits */
  logits: Float32Array
  /** [positions] log-sum-exp over the full vocabulary (log p = logit - logZ) */
  logZ: Float32Array
  positions: number
  numCandidates: number
}

/**
 * What may change. 'rows': only those word-embedding rows (frozen P-tuning), or with `encoder` a prompt encoder
 * producing them; 'all' with `encoder` + `promptRows`: full P-tuning. `promptLr`: the encoder's learning rate.
 */
export type NativeTrainable =
  | { kind: 'all', encoder?: 'lstm' | 'mlp', promptRows?: Int32Array, promptLr?: number }
  | { kind: 'tensors', names: string[] }
  | { kind: 'rows', rows: Int32Array, encoder?: 'lstm' | 'mlp', promptLr?: number }

/**
 * setTrainable's optimizer (AdamW) and schedule: learning rate, weight decay, moments, warm-up and decay, gradient
 * clipping, seed, precision, recomputation, data parallelism.
 */
export interface NativeOptimOptions {
  lr?: number
  weightDecay?: number
  beta1?: number
  beta2?: number
  eps?: number
  warmupSteps?: number
  /** 0: constant learning rate after warm-up; else linear decay to 0 at this step */
  totalSteps?: number
  /** <= 0: no clipping */
  maxGradNorm?: number
  seed?: number
  /** bf16 GEMMs (CPU: the layer kernel's, CUDA: autocast), fp32 master weights and optimizer state */
  precision?: NativePrecision
  /** the same as precision: 'bf16' */
  bf16?: boolean
  /** resuming: the schedule continues from this step */
  initialStep?: number
  /** recompute each encoder layer's activations in backward: less memory, about a third more compute */
  recompute?: boolean
  /** data parallelism: all-reduce each step's gradients over the process group of distInit() */
  distributed?: boolean
  /** AdamW in one pass per tensor on the CPU, PyTorch's fused kernel and foreach clipping on CUDA (LibTorch >= 2.1);
   *  false: LibTorch's per-tensor AdamW and clipping (the same formula and state; for comparisons). Default true */
  fusedAdamw?: boolean
}

/** vocabWeight * CE(vocabulary) at vocabPositions + candWeight * CE(candidates) at candPositions. */
export interface NativeLoss {
  vocabPositions?: Int32Array
  vocabTargets?: Int32Array
  candPositions?: Int32Array
  /** [numCandidates] shared, or [positions * numCandidates] */
  candidates?: Int32Array
  numCandidates?: number
  /** index into the candidates, one per candidate position */
  candLabels?: Int32Array
  /** PET's verbalizer loss: S [MASK] slots per example, in order, (row, column) pairs */
  labelPositions?: Int32Array
  /** the C candidate token ids scored at every slot */
  labelCandidates?: Int32Array
  /** [words, S * C]: which candidate at which slot each verbalizer word uses (1) */
  wordMatrix?: Float32Array
  /** [words]: the label (0..L-1) of each word */
  wordLabel?: Int32Array
  /** [examples]: the gold label of each example */
  labelTargets?: Int32Array
  /** word scores from raw logits (PET) or log-probabilities; default 'logit' */
  labelScore?: 'logit' | 'logprob'
  /** several words per label: mean (PET) or log-sum-exp; default 'mean' */
  labelAggregate?: 'mean' | 'logsumexp'
  /** classifier head: gold labels, one per batch row */
  clsLabels?: Int32Array
  /** classifier head: teacher logits [clsRows, clsNumLabels]; KL to softmax(teacher / T), times T^2 */
  clsTeacherLogits?: Float32Array
  clsRows?: number
  clsNumLabels?: number
  clsTemperature?: number
  vocabWeight?: number
  candWeight?: number
  labelWeight?: number
  clsWeight?: number
}

/**
 * One training step's outcome: the total loss and each term's, the gradients' norm, the learning rate and
 * the step number.
 */
export interface NativeStepResult {
  loss: number
  vocabLoss: number
  candLoss: number
  labelLoss: number
  clsLoss: number
  gradNorm: number
  lr: number
  step: number
  /** distributed: some rank asked to stop ({ stop: true }); no step was taken */
  stopped: boolean
  /** distributed: milliseconds spent in this step's all-reduces */
  allreduceMs: number
}

/**
 * How distInit joins the process group: this process's rank, the world size, the rendezvous address and the timeout.
 */
export interface NativeDistInit {
  rank: number
  worldSize: number
  masterAddr: string
  masterPort: number
  timeoutMs: number
}

/** The process group as distInfo reports it: whether this build can join one, whether it has, the rank and size. */
export interface NativeDistInfo {
  /** whether this build has c10d with Gloo; `reason` says why not */
  available: boolean
  reason: string
  initialized: boolean
  rank?: number
  worldSize?: number
  broken?: boolean
}

/**
 * A loaded model in the native core: its forward passes, candidate scoring, training steps and tensors. Each model's
 * jobs run in order on its own compute thread; the promise-returning methods run there.
 */
export declare class NativeModel {
  private constructor ()
  static load (dir: string, options?: NativeLoadOptions): Promise<NativeModel>
  info (): NativeModelInfo
  /** positions: (row, column) pairs */
  scoreCandidates (batch: NativeBatch, positions: Int32Array, candidates: Int32Array, numCandidates: number): Promise<NativeCandidateScores>
  /** [positions, vocabSize] */
  logitsAt (batch: NativeBatch, positions: Int32Array): Promise<Float32Array>
  /** [batch, seq, hidden] */
  hiddenStates (batch: NativeBatch, layer: 'last' | 'embeddings'): Promise<Float32Array>
  /** returns the number of trainable values */
  setTrainable (spec: NativeTrainable, optim?: NativeOptimOptions): number
  /** distributed: batch and loss null for an empty share of the global batch; stop asks every rank to stop */
  trainStep (batch: NativeBatch | null, loss: NativeLoss | null, options?: { stop?: boolean }): Promise<NativeStepResult>
  lossAndGrads (batch: NativeBatch, loss: NativeLoss, train: boolean): Promise<NativeStepResult & { grads: Record<string, Float32Array> }>
  save (dir: string, options?: { maxShardBytes?: number }): Promise<void>
  /** the optimizer's moments and the step counter, for resuming (written atomically) */
  saveTrainerState (path: string): Promise<void>
  loadTrainerState (path: string): Promise<void>
  /** the prompt encoder's current output: input-side embeddings of the prompt rows; null without one */
  inputRows (): { rows: Int32Array, values: Float32Array } | null
  /** sets (or with null clears) input-side replacement embeddings [rows, hidden] */
  setInputRows (rows: Int32Array | null, values?: Float32Array): void
  /** writes rows of the word-embedding matrix (input and tied output side) */
  setEmbeddingRows (rows: Int32Array, values: Float32Array): void
  /** the prompt encoder's tensors by name (prompt_encoder.*), empty without one */
  promptEncoderTensors (): Record<string, { shape: number[], data: Float32Array }>
  /** adds a [CLS] classifier head (or adopts the checkpoint's own); returns true if adopted; before setTrainable */
  addClassifier (numLabels: number, seed?: number): boolean
  /** [batch, numLabels] classifier logits */
  classify (batch: NativeBatch): Promise<Float32Array>
  tensorNames (): string[]
  getTensor (name: string): { shape: number[], data: Float32Array }
  setInferenceOptions (options: { bf16?: boolean, precision?: NativePrecision }): void
  dispose (): void
}

/**
 * The addon's exports: the model class, config reading, threads, seeds, the GEMM probe, build facts, the process group.
 */
export interface NativeAddon {
  NativeModel: typeof NativeModel
  /** dir/config.json as NativeModelInfo.config, without loading any weights (throws on a bad or unknown config) */
  readConfig (dir: string): NativeConfig
  setNumThreads (n: number): void
  getNumThreads (): number
  cudaAvailable (): boolean
  manualSeed (seed: number): void
  /** GFLOP/s of one [rows, in] x [in, out]^T linear layer per core on `threads` cores at once through the layer
   * kernel's dense step on `kernels` (default 512 x 256 x 1024, fp32, the intra-op thread count, oneDNN where this
   * build calls it); synchronous, for benchmarks */
  gemmRate (options: { rows?: number, in?: number, out?: number, precision?: NativePrecision, threads?: number, kernels?: NativeKernels }): number
  torchVersion: string
  /** the oneDNN this build calls directly (kernels 'onednn'), '' when it cannot */
  onednnVersion: string
  parallelInfo: string
  configInfo: string
  /** joins the process's one c10d process group (TCPStore rendezvous, then Gloo) */
  distInit (options: NativeDistInit): Promise<void>
  distBarrier (): Promise<void>
  /** the element-wise sum over the ranks */
  distAllReduceSum (values: Float64Array): Promise<Float64Array>
  distInfo (): NativeDistInfo
}
