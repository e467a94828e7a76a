// pet-mlm/advanced: the building blocks under the workflows, for custom pipelines — the model (MaskedLM, typed
// methods over the native model), tokenizers, patterns and verbalizers, the scoring rule, batching, data helpers, the
// build's description and the native types. The package root ('pet-mlm') has the workflows, Classifier and PetError;
// what is here may change between minor versions as the model internals do.
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
