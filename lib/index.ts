// pet-mlm: few-shot text classification with BERT's masked-language model over a LibTorch core.
// Every workflow is a typed function here (the `pet` CLI is a thin shell over them); Classifier loads what they write.
export { PetError } from './errors'
export { resolveModel, hubCacheDir, type HubOptions, type DownloadProgress } from './hub'

// workflows
export { zeroShot, type ZeroShotOptions, type ZeroShotResult } from './workflows/zero-shot'
export { train, type TrainOptions, type TrainResult } from './workflows/train'
export { finetune, type FinetuneOptions, type FinetuneResult } from './workflows/finetune'
export { pretrain, type PretrainOptions, type PretrainResult } from './workflows/pretrain'
export { ensemble, type EnsembleOptions, type EnsembleResult, type EnsembleMemberResult } from './workflows/ensemble'
export { distill, type DistillOptions, type DistillResult } from './workflows/distill'
export { ipet, type IpetOptions, type IpetResult, type IpetGeneration } from './workflows/ipet'
export { ptune, type PtuneOptions, type PtuneResult } from './workflows/ptune'
export { predict, type PredictOptions, type PredictResult } from './workflows/predict'
export { tokenize, type TokenizeOptions, type TokenizeResult } from './tokenize'
export type { ModelOptions, DataOptions, TrainingOptions, PetOptions, RunResult } from './workflows/common'
export type { EpochRecord } from './train/loop'
export type { ProgressEvent, ProgressCallback, Control } from './progress'

// trained output
export { Classifier, type ClassifierLoadOptions, type ClassifyOptions, type Classification, type ClassifierKind } from './classifier'

// building blocks
export { MaskedLM, defaultModelDir, type LoadOptions } from './model'
export { WordPieceTokenizer, type WordPieceOptions } from './tokenizer/wordpiece'
export { HfTokenizer } from './tokenizer/hf-tokenizer'
export type { Tokenizer } from './tokenizer/tokenizer'
export { Pattern, type PatternPiece, type EncodedInput, type Fields } from './pet/pattern'
export { Verbalizer, type VerbalizerSpec } from './pet/verbalizer'
export { scoringRule, applyRule, labelScores, softmax, argmax, type LabelScoreOptions, type ScoringRule } from './pet/label-scores'
export { scoreExamples, accuracy, encodeExamples, type Prediction, type ScoreOptions, type Evaluation } from './pet/score'
export { readJsonl, parseJsonl, type JsonlRecord } from './data/jsonl'
export { toExamples, type Example, type ExampleOptions, type DataRecord, type DataInput } from './data/examples'
export { padBatch, lengthBuckets } from './batch'
export { systemInfo, type SystemInfo } from './system-info'
export type { NativeBatch, NativeLoss, NativeTrainable, NativeOptimOptions, NativeStepResult, NativeCandidateScores, NativeModelInfo, NativePrecision, NativeKernels } from '../bindings'
