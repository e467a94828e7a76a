// predict(): a trained model (or an adapter on its base) labels a data set, as a library call.
import { writeFileAtomic } from '../atomic-write'
import { Classifier, type Classification } from '../classifier'
import { fieldMap, loadExamples, type DataInput } from '../data/examples'
import { accuracy } from '../pet/score'
import type { Control } from '../progress'
import { workflows } from '../options'
import { workflowOptions } from '../validate'
import type { ModelOptions, Settled } from './common'
import { notDistributed } from './common'

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
}

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

export async function predict (options: PredictOptions): Promise<PredictResult> {
  const o = workflowOptions<Settled<PredictOptions> & { batchSize: number }>(workflows.predict, options)
  notDistributed('predict')
  const classifier = await Classifier.load(o.prompt ?? o.model, {
    model: o.prompt !== undefined ? o.model : undefined, device: o.device, threads: o.threads, precision: o.precision, textField: o.textField, batchSize: o.batchSize
  })
  try {
    const examples = loadExamples(o.data, classifier.fields, fieldMap(classifier.fields, o), 'data')
    const preds = await classifier.predictExamples(examples, { signal: o.signal, onProgress: o.onProgress })
    const labeled = examples.filter(e => e.label !== undefined).length
    const acc = labeled > 0 ? accuracy(examples, preds, classifier.labels).accuracy : null
    const predictions = preds.map(p => classifier.classification(p))
    if (o.out !== undefined) {
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
