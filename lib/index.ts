// pet-mlm: few-shot text classification with BERT's masked-language model over a LibTorch core.
// Every workflow is a typed function here (the `pet` CLI is a thin shell over them); Classifier loads what they write.
// The building blocks under them (MaskedLM, tokenizers, Pattern, Verbalizer, the scoring rule, the native types) are
// the advanced entry point, 'pet-mlm/advanced' (lib/advanced.ts).
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

