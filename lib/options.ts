// Every option of every workflow, written once: its kind, range, default and help. The library validates its
// options against this table (validate.ts) and the CLI derives its flags from it (cli/command.ts: `batchSize` is
// `--batch-size`), so a default or a range cannot differ between the two. A value list that code elsewhere also
// branches on is written beside that code and imported here (the scoring rules), or here and imported there.
import { continuationRules, defaultLabelScoreOptions, manyToOneRules, multiTokenRules } from './pet/label-scores'

/** The GEMM precisions of scoring and training. */
export const precisions = ['fp32', 'bf16'] as const
export type Precision = typeof precisions[number]
/** How CPU inference runs the layers: the native core's row-chunk tasks, or one plain forward pass (for comparison). */
export const schedules = ['tasks', 'plain'] as const
export type Schedule = typeof schedules[number]
/** What CPU inference runs the layer's dense steps and attention on: oneDNN called directly, or ATen's ops. */
export const kernelChoices = ['onednn', 'aten'] as const

export type OptionKind =
  | 'integer' | 'number' | 'string' | 'boolean' | 'enum'
  /** a JSONL path or an in-memory array of records (strings or objects) */
  | 'data'
  /** a string or a non-empty list of strings (CLI: the flag repeated) */
  | 'strings'
  /** a list of strings; the CLI takes it comma-separated */
  | 'list'
  /** a JSON list of strings; the CLI takes the JSON */
  | 'json-list'
  /** a verbalizer {"label": ["word", …]}; the CLI takes the JSON */
  | 'verbalizer'
  /** an object of raw label -> label name; the CLI takes the JSON */
  | 'label-map'
  /** a list of integers; the CLI takes it comma-separated */
  | 'integer-list'
  /** library only: an AbortSignal */
  | 'signal'
  /** library only: a callback */
  | 'function'

export interface OptionSpec {
  kind: OptionKind
  help: string
  /** the default; absent: unset (optional) or required, as the workflow says */
  default?: unknown
  min?: number
  max?: number
  /** min is exclusive (a number > min) */
  above?: boolean
  values?: readonly string[]
  /** placeholder in the usage text */
  arg?: string
  /** the CLI flag when it is not the name in kebab-case (patterns: --pattern, repeated) */
  flag?: string
}

const o = (kind: OptionKind, help: string, rest: Omit<OptionSpec, 'kind' | 'help'> = {}): OptionSpec => ({ kind, help, ...rest })

/** The one table. Workflows pick from it and may override a default (pretrain's lr, ptune's frozen lr). */
export const optionTable = {
  // model and machine
  model: o('string', 'model directory (HF layout), or a Hugging Face hub name org/name (from the HF cache, else downloaded into it); default: the bundled zh-mini-mlm', { arg: 'DIR' }),
  revision: o('string', 'the hub revision (branch, tag or commit hash) of a --model given as org/name', { default: 'main', arg: 'REV' }),
  device: o('string', "'cpu', 'cuda' or 'cuda:N'", { default: 'cpu', arg: 'cpu|cuda' }),
  threads: o('integer', 'intra-op threads (default: all cores, or PET_MLM_THREADS)', { min: 1, max: 1024, arg: 'N' }),
  precision: o('enum', 'GEMMs in fp32, or in bf16 (oneDNN on CPU; LayerNorm, softmax and master weights stay fp32) for scoring and training', { default: 'fp32', values: precisions }),
  // data
  data: o('data', 'the examples to score (JSONL path or records)', { arg: 'FILE' }),
  train: o('data', 'labeled training examples (JSONL path or records)', { arg: 'FILE' }),
  dev: o('data', 'labeled examples for model selection, scored each epoch', { arg: 'FILE' }),
  test: o('data', 'labeled examples scored once with the best epoch', { arg: 'FILE' }),
  unlabeled: o('data', 'unlabeled examples (semi-supervised training, soft labels)', { arg: 'FILE' }),
  textField: o('string', "record key of the text (for a one-field pattern; 'text' falls back to FewCLUE's 'sentence')", { default: 'text', arg: 'KEY' }),
  labelField: o('string', 'record key of the label', { default: 'label', arg: 'KEY' }),
  labelMap: o('label-map', 'raw label -> label name, e.g. TNEWS {"news_sports":"体育"}, or the path of a JSON file holding that object', { arg: 'JSON|FILE' }),
  limitTrain: o('integer', 'use only the first N training examples', { min: 1, arg: 'N' }),
  maxLength: o('integer', 'tokens per input at most ([CLS] and [SEP] included); the text is truncated, never the pattern', { default: 128, min: 3, max: 100000, arg: 'N' }),
  out: o('string', 'run directory (default: runs/<command>-<time>)', { arg: 'DIR' }),
  // PET
  pattern: o('string', "cloze pattern, e.g. '[MASK]满意。{text}'", { arg: 'P' }),
  patterns: o('strings', 'one pattern per model (CLI: --pattern repeated)', { arg: 'P', flag: 'pattern' }),
  verbalizer: o('verbalizer', 'label -> words, e.g. {"positive":["很"],"negative":["不"]}', { arg: 'JSON' }),
  manyToOne: o('enum', 'several words per label: mean of their scores (PET) or log of summed probabilities', { default: defaultLabelScoreOptions.manyToOne, values: manyToOneRules }),
  multiToken: o('enum', "multi-token words: sum or per-token mean of their tokens' log-probabilities, or iterative decoding; auto: sum when every word has the same token count (PET's), mean when they differ (a sum favours short words: TNEWS zero-shot with 2-4 character names 17.1 % sum, 21.4 % mean)", { default: defaultLabelScoreOptions.multiToken, values: multiTokenRules }),
  continuation: o('enum', "causal LMs (GPT-2): a label's score is its word's log-probability after the pattern's prefix ('word'), or that plus the log-probability of the rest of the pattern after the word ('word+suffix')", { default: defaultLabelScoreOptions.continuation, values: continuationRules }),
  maskRate: o('number', 'share of the other tokens randomly masked as extra MLM targets (default 0.15 with a masked LM; a causal LM has no random masking)', { min: 0, max: 0.999 }),
  labelLoss: o('enum', "'vocab' (the seed's: label word as an MLM target; a causal LM: the LM loss over the pattern with the label word) or 'verbalizer' (PET's: cross-entropy over label scores)", { default: 'vocab', values: ['vocab', 'verbalizer'] }),
  alpha: o('number', "verbalizer-loss weight; the MLM (a causal LM: LM) loss gets 1 - alpha (--label-loss verbalizer)", { default: 0.9999, min: 0, above: true, max: 1 }),
  unlabeledRatio: o('number', 'unlabeled texts per labeled example in a batch', { default: 1, min: 0, max: 1000 }),
  // training loop
  epochs: o('integer', 'epochs', { default: 30, min: 1, max: 100000 }),
  lr: o('number', 'peak learning rate (AdamW)', { default: 1e-4, min: 0, above: true, max: 10 }),
  batchSize: o('integer', 'examples per step (per batch when scoring)', { default: 16, min: 1, max: 65536 }),
  evalBatchSize: o('integer', 'examples per batch when scoring dev/test', { default: 64, min: 1, max: 65536 }),
  weightDecay: o('number', 'AdamW weight decay', { default: 0.01, min: 0, max: 10 }),
  warmup: o('number', 'share of the steps with linear warm-up (then linear decay to 0)', { default: 0, min: 0, max: 1 }),
  maxGradNorm: o('number', 'gradient clipping norm (0: off)', { default: 1, min: 0, max: 1e9 }),
  seed: o('integer', 'seed for shuffling, masking, dropout and head initialisation', { default: 42, min: 0, max: 2 ** 31 - 1 }),
  patience: o('integer', 'stop after N epochs without a better dev accuracy (0: off)', { default: 0, min: 0, max: 100000 }),
  resume: o('boolean', 'continue the interrupted run in --out', { default: false }),
  // data parallelism (c10d: Gloo on CPU)
  nproc: o('integer', 'local worker processes, each on its share of every batch (several machines: set RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT instead)', { default: 1, min: 1, max: 256, arg: 'N' }),
  distTimeout: o('number', 'seconds a worker waits for the others (rendezvous, each all-reduce) before it fails', { default: 300, min: 0, above: true, max: 86400, arg: 'S' }),
  // classifier ([CLS] head)
  labels: o('json-list', 'the label order, e.g. ["negative","positive"] (default: the sorted training labels)', { arg: 'JSON' }),
  fields: o('list', 'the text fields, in order (CLI: comma-separated)', { default: ['text'], arg: 'text' }),
  // pretraining
  limit: o('integer', 'use only the first N texts', { min: 1, arg: 'N' }),
  // ensembles, distillation, iPET
  weighting: o('enum', "members' weights: wmean (each pattern's accuracy on the labeled set before training) or uniform", { default: 'wmean', values: ['wmean', 'uniform'] }),
  models: o('list', 'already trained members, in pattern order (CLI: comma-separated)', { arg: 'DIRS' }),
  softLabels: o('data', "an ensemble's soft labels (soft-labels.jsonl) to distil from instead of training one", { arg: 'FILE' }),
  temperature: o('number', 'distillation temperature T (KL at T, scaled by T^2)', { default: 2, min: 0, above: true, max: 1000 }),
  distillEpochs: o('integer', "the student's epochs", { default: 3, min: 1, max: 100000 }),
  distillLr: o('number', "the student's learning rate", { default: 5e-5, min: 0, above: true, max: 10 }),
  generations: o('integer', 'iPET generations (the first is plain PET)', { default: 3, min: 1, max: 100 }),
  logitsShare: o('number', "share of the other models that label for each model", { default: 0.25, min: 0, above: true, max: 1 }),
  scaleFactor: o('number', 'the training set grows by this factor per generation', { default: 5, min: 1, max: 1000 }),
  // P-tuning
  promptTokens: o('integer', 'prompt tokens ([unusedN]) in the generated pattern', { default: 8, min: 1, max: 99 }),
  layout: o('enum', 'where the prompt tokens go: around the [MASK] (a masked LM), around the text with the [MASK] last (a causal LM)', { default: 'around', values: ['around', 'prefix', 'suffix'] }),
  mode: o('enum', 'frozen (few labels: only the prompt learns) or full (every weight trains)', { default: 'frozen', values: ['frozen', 'full'] }),
  encoder: o('enum', 'prompt encoder producing the prompt rows', { default: 'none', values: ['none', 'lstm', 'mlp'] }),
  promptLr: o('number', "the prompt encoder's learning rate (default: --lr)", { min: 0, above: true, max: 10 }),
  promptInit: o('string', "start the raw prompt rows from the embeddings of this text's tokens, one per prompt token", { arg: 'TEXT' }),
  auxMlmWeight: o('number', 'weight of the auxiliary MLM loss (a causal LM: the LM loss over the sequence) beside the label loss (0: off)', { default: 0, min: 0, max: 1000 }),
  recompute: o('enum', 'recompute activations in backward (less memory, more compute); default: on for frozen, off for full', { values: ['on', 'off'] }),
  // prediction
  prompt: o('string', 'a P-tuning adapter folder to plug onto --model', { arg: 'DIR' }),
  // tokenize
  text: o('string', 'one text', { arg: 'T' }),
  input: o('data', 'texts (JSONL: strings or objects with the text field)', { arg: 'FILE' }),
  // bench
  peerModel: o('string', "the transformers.js peer's ONNX model (default ../shared/models/zh-mini-mlm-onnx)", { arg: 'DIR' }),
  noPeer: o('boolean', 'skip transformers.js'),
  noTrain: o('boolean', 'skip the PET training steps'),
  gptModel: o('string', 'a causal LM (GPT-2) benched beside the masked LM (default ../shared/models/zh-mini-gpt where present)', { arg: 'DIR' }),
  gptPattern: o('string', "the causal LM's pattern: [MASK] is the answer, after the text", { default: '感觉如何？{text}[MASK]满意。', arg: 'P' }),
  noGpt: o('boolean', 'skip the causal LM'),
  batchSizes: o('integer-list', 'scoring batch sizes', { default: [1, 8, 32, 128], min: 1, max: 65536, arg: '1,8,32,128' }),
  runs: o('integer', 'fresh processes per side and batch size', { default: 5, min: 1, max: 1000 }),
  order: o('enum', 'batch order: sorted by length, or as in the data', { default: 'sorted', values: ['sorted', 'dataset'] }),
  warmupBatches: o('integer', 'batches run before timing', { default: 2, min: 0, max: 1000 }),
  trainBatchSize: o('integer', 'examples per PET training step', { default: 32, min: 1, max: 65536 }),
  trainSteps: o('integer', 'timed PET training steps', { default: 10, min: 1, max: 100000 }),
  schedule: o('enum', "our scoring, as MaskedLM.load's schedule: the native core's row-chunk tasks, or one plain forward pass to compare with", { default: 'tasks', values: schedules }),
  kernels: o('enum', "our scoring and the GEMM probe, as MaskedLM.load's kernels: oneDNN called directly (the default where the build can) or ATen's ops, to compare with", { values: kernelChoices }),
  outJson: o('string', 'the report as JSON', { default: 'bench-results/bench.json', arg: 'FILE' }),
  outMd: o('string', 'the report as Markdown', { default: 'bench-results/bench.md', arg: 'FILE' }),
  // library only
  signal: o('signal', 'an AbortSignal: a cancelled run stops at the next step and leaves a checkpoint that resume continues'),
  onProgress: o('function', 'progress callback (ProgressEvent)')
} satisfies Record<string, OptionSpec>

export type OptionName = keyof typeof optionTable

/** A workflow's options: which it takes, which it requires, and the defaults it changes. */
export interface WorkflowSpec {
  name: string
  options: readonly OptionName[]
  required?: readonly OptionName[]
  defaults?: Partial<Record<OptionName, unknown>>
  /** what an option means in this workflow, where the table's words do not fit */
  help?: Partial<Record<OptionName, string>>
}

const modelOpts = ['model', 'revision', 'device', 'threads', 'precision'] as const
const control = ['signal', 'onProgress'] as const
const dataOpts = ['train', 'dev', 'test', 'textField', 'labelField', 'labelMap', 'limitTrain', 'maxLength', 'out'] as const
const loopOpts = ['epochs', 'lr', 'batchSize', 'evalBatchSize', 'weightDecay', 'warmup', 'maxGradNorm', 'seed', 'patience', 'resume'] as const
/** data parallelism: the workflows lib/distributed/worker.ts can run (training in one runTraining, or sharded scoring) */
const distOpts = ['nproc', 'distTimeout'] as const
const scoreRule = ['manyToOne', 'multiToken', 'continuation'] as const
const petOpts = ['verbalizer', 'maskRate', 'labelLoss', 'alpha', 'unlabeled', 'unlabeledRatio', ...scoreRule] as const
const ensembleOpts = [...modelOpts, ...control, ...dataOpts, ...loopOpts, ...distOpts, ...petOpts, 'patterns', 'weighting', 'models'] as const

export const workflows = {
  zeroShot: {
    name: 'zero-shot',
    options: [...modelOpts, ...control, ...distOpts, 'data', 'pattern', 'verbalizer', 'textField', 'labelField', 'labelMap', 'out', 'batchSize', 'maxLength', ...scoreRule, 'seed'],
    required: ['data', 'pattern', 'verbalizer'],
    defaults: { batchSize: 32 },
    help: {
      out: 'also write the predictions here (JSONL: index, label, gold, scores, probs)',
      nproc: 'local worker processes, each scoring a share of the batches (several machines: set RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT instead)'
    }
  },
  train: {
    name: 'train',
    options: [...modelOpts, ...control, ...dataOpts, ...loopOpts, ...distOpts, ...petOpts, 'pattern'],
    required: ['train', 'pattern', 'verbalizer']
  },
  finetune: {
    name: 'finetune',
    options: [...modelOpts, ...control, ...dataOpts, ...loopOpts, ...distOpts, 'labels', 'fields', 'verbalizer'],
    required: ['train']
  },
  pretrain: {
    name: 'pretrain',
    options: [...modelOpts, ...control, ...loopOpts, ...distOpts, 'data', 'textField', 'limit', 'maskRate', 'maxLength', 'out'],
    required: ['data'],
    defaults: { lr: 5e-5, epochs: 1, batchSize: 32 }
  },
  ensemble: {
    name: 'ensemble',
    options: ensembleOpts,
    required: ['train', 'patterns', 'verbalizer']
  },
  distill: {
    name: 'distill',
    options: [...ensembleOpts, 'softLabels', 'labels', 'fields', 'temperature', 'distillEpochs', 'distillLr'],
    required: []
  },
  ipet: {
    name: 'ipet',
    options: [...ensembleOpts.filter(n => n !== 'weighting' && n !== 'models'), 'generations', 'logitsShare', 'scaleFactor'],
    required: ['train', 'unlabeled', 'patterns', 'verbalizer']
  },
  ptune: {
    name: 'ptune',
    options: [...modelOpts, ...control, ...dataOpts, ...loopOpts, ...distOpts, ...petOpts, 'pattern', 'promptTokens', 'layout', 'mode', 'encoder', 'promptLr', 'promptInit', 'auxMlmWeight', 'recompute'],
    required: ['train', 'verbalizer'],
    // these depend on the mode (frozen / full) and on auxMlmWeight: ptune() settles them
    defaults: { lr: undefined, weightDecay: undefined, maskRate: undefined }
  },
  predict: {
    name: 'predict',
    options: [...modelOpts, ...control, ...distOpts, 'prompt', 'data', 'textField', 'labelField', 'labelMap', 'out', 'batchSize'],
    required: ['model', 'data'],
    defaults: { batchSize: 64 },
    help: {
      model: 'the trained model: a run directory or its best/ (with --prompt: the base model)',
      out: 'also write the predictions here (JSONL: index, label, probs)',
      nproc: 'local worker processes, each scoring a share of the batches (several machines: set RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT instead)'
    }
  },
  bench: {
    name: 'bench',
    options: ['data', 'limit', 'model', 'peerModel', 'noPeer', 'pattern', 'verbalizer', 'batchSizes', 'runs', 'maxLength', 'order',
      'warmupBatches', 'noTrain', 'trainBatchSize', 'trainSteps', 'gptModel', 'gptPattern', 'noGpt', 'threads', 'schedule', 'kernels', 'outJson', 'outMd'],
    defaults: { pattern: '[MASK]满意。{text}', verbalizer: { positive: ['很'], negative: ['不'] } }
  },
  tokenize: {
    name: 'tokenize',
    options: ['model', 'revision', 'text', 'input', 'textField']
  }
} satisfies Record<string, WorkflowSpec>

export type WorkflowName = keyof typeof workflows

/** The default of an option in a workflow: the workflow's own, else the table's. */
export function defaultOf (w: WorkflowSpec, name: OptionName): unknown {
  const d = w.defaults as Record<string, unknown> | undefined
  return d !== undefined && name in d ? d[name] : (optionTable[name] as OptionSpec).default
}
