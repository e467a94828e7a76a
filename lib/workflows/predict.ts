// predict(): a trained model (or an adapter on its base) labels a data set, as a library call.
import { writeFileAtomic } from '../atomic-write'
import { Classifier, type Classification } from '../classifier'
import { fieldMap, loadExamples, type DataInput } from '../data/examples'
import { accuracy } from '../pet/score'
import type { Control } from '../progress'
import { workflows } from '../options'
import { workflowOptions } from '../validate'
import { joinGroup } from '../distributed/group'
import { deviceOf, onWorkers, type ModelOptions, type Settled, withModelFolder } from './common'

/** The options of predict: the trained model (or a base model and an adapter), the data, where to write predictions. */
export interface PredictOptions extends ModelOptions, Control {
  /** the trained model: a run directory, its best/, or — with `prompt` — the base model */
  model: string
  /** a P-tuning adapter folder to plug onto `model` */
  prompt?: string
  data: DataInput
  textField?: string
  labelField?: string
  labelMap?: Record<string, string> | string
  /** also write the predictions here (JSONL: index, label, probs) */
  out?: string
  batchSize?: number
  /** local worker processes, each scoring every N-th batch; rank 0 returns (and writes) all, in input order */
  nproc?: number
  /** seconds a worker waits for the others before it fails (default 300) */
  distTimeout?: number
}

/**
 * What predict returns: the accuracy over the labeled examples, the model's kind and one classification per example.
 */
export interface PredictResult {
  /** over the labeled examples; null when none has a label */
  accuracy: number | null
  n: number
  examples: number
  mode: 'pet' | 'classifier'
  model: string
  out: string | null
  predictions: Classification[]
}

/**
 * Labels `data` with what a training workflow wrote: a run directory or its best/, or a base model with a P-tuning
 * adapter (`prompt`). Returns the accuracy over the labeled examples and every prediction (also written to `out`).
 */
export async function predict (options: PredictOptions): Promise<PredictResult> {
  const o = await withModelFolder(workflowOptions<Settled<PredictOptions> & { batchSize: number, distTimeout: number }>(workflows.predict, options))
  const onWorkersResult = await onWorkers<PredictResult>('predict', options, o, false)
  if (onWorkersResult !== undefined) return onWorkersResult
  // A worker of a distributed run scores its share of the batches; every worker ends with all the scores.
  const group = await joinGroup(o.distTimeout)
  const classifier = await Classifier.load(o.prompt ?? o.model, {
    model: o.prompt !== undefined ? o.model : undefined, device: deviceOf(o.device), threads: o.threads, precision: o.precision, textField: o.textField, batchSize: o.batchSize
  })
  try {
    const examples = loadExamples(o.data, classifier.fields, fieldMap(classifier.fields, o), 'data')
    const preds = await classifier.predictExamples(examples, { signal: o.signal, onProgress: o.onProgress, shard: group })
    const labeled = examples.filter(e => e.label !== undefined).length
    const acc = labeled > 0 ? accuracy(examples, preds, classifier.labels).accuracy : null
    const predictions = preds.map(p => classifier.classification(p))
    if (o.out !== undefined && (group?.rank ?? 0) === 0) {
      writeFileAtomic(o.out, predictions.map((p, i) => JSON.stringify({ index: i, label: p.label, probs: p.probs })).join('\n') + '\n')
    }
    return {
      accuracy: acc, n: labeled, examples: examples.length, mode: classifier.kind === 'classifier' ? 'classifier' : 'pet',
      model: o.model, out: o.out ?? null, predictions
    }
  } finally {
    classifier.dispose()
  }
}
