// The plain sequence classifier ([CLS] + linear head on the same encoder): the fine-tuning baseline PET must
// beat, and the student of distillation.
import type { NativeLoss } from '../../bindings'
import { lengthBuckets, padBatch, tokenType } from '../batch'
import type { Example } from '../data/examples'
import { PetError } from '../errors'
import { MaskedLM, type LoadOptions } from '../model'
import type { ModelView } from '../model-folder'
import { throwIfAborted, type Control } from '../progress'
import { argmax, softmax } from './label-scores'
import { labelBreakdown, type LabelBreakdown } from '../report/per-label'
import { accuracy, type Prediction, type ScoreShard } from './score'

/** One encoded input of the [CLS] classifier: token ids and segment ids, without a pattern. */
export interface ClassifierInput { inputIds: number[], tokenTypeIds: number[] }

/** [CLS] a [SEP] (b [SEP]) with the fields in the given order, longest field truncated first. */
export function encodePlain (model: ModelView, e: Example, fields: readonly string[], maxLength: number): ClassifierInput {
  const tok = model.tokenizer
  const limit = Math.min(maxLength, model.maxPositions)
  const parts = fields.map(f => {
    const t = e.fields[f]
    if (typeof t !== 'string') throw new PetError(`${e.source}: no text field '${f}'`, 'EDATA')
    return tok.encode(t)
  })
  let total = parts.reduce((n, p) => n + p.length, 1 + parts.length)
  while (total > limit) {
    const longest = parts.reduce((best, p, i) => (p.length > parts[best].length ? i : best), 0)
    parts[longest].pop()
    total--
  }
  const inputIds = [tok.clsId]
  const tokenTypeIds = [0]
  parts.forEach((p, i) => {
    for (const id of [...p, tok.sepId]) { inputIds.push(id); tokenTypeIds.push(tokenType(i, model.config.typeVocabSize)) }
  })
  return { inputIds, tokenTypeIds }
}

/**
 * Probabilities from the classifier head, in the examples' order. With `shard` (a worker of a distributed run) it
 * scores every N-th batch and the logits are summed over the workers (fp64, the others adding exact zeros), so
 * every worker ends with one process's predictions, bit for bit.
 */
export async function classifyExamples (model: MaskedLM, labels: readonly string[], inputs: readonly ClassifierInput[],
  batchSize = 32, control: Control & { shard?: ScoreShard } = {}): Promise<Prediction[]> {
  const out: Prediction[] = new Array(inputs.length)
  const L = labels.length
  const shard = control.shard
  const logitsOf = new Float64Array(inputs.length * L)
  let done = 0
  const buckets = lengthBuckets(inputs.map(x => x.inputIds.length), batchSize)
  for (let k = 0; k < buckets.length; k++) {
    if (shard !== undefined && k % shard.worldSize !== shard.rank) continue
    throwIfAborted(control.signal, 'classification')
    const bucket = buckets[k]
    const logits = await model.classify(padBatch(bucket.map(i => inputs[i]), model.tokenizer.padId))
    bucket.forEach((index, b) => logitsOf.set(logits.subarray(b * L, (b + 1) * L), index * L))
    done += bucket.length
    control.onProgress?.({ kind: 'score', done, total: inputs.length })
  }
  const all = shard !== undefined ? await shard.allReduceSum(logitsOf) : logitsOf
  for (let i = 0; i < inputs.length; i++) {
    const scores = Array.from(all.subarray(i * L, (i + 1) * L))
    out[i] = { label: labels[argmax(scores)], scores, probs: softmax(scores) }
  }
  return out
}

interface Item { input: ClassifierInput, label?: number, teacher?: number[] }

/**
 * Steps for the classifier: hard labels (fine-tuning) or teacher logits (distillation: KL at temperature T,
 * scaled by T^2 as in PET).
 */
export function classifierSteps (model: ModelView, items: Item[], numLabels: number, temperature: number) {
  return {
    items,
    buildStep (batchItems: readonly Item[]): { batch: ReturnType<typeof padBatch>, loss: NativeLoss } {
      const batch = padBatch(batchItems.map(i => i.input), model.tokenizer.padId)
      if (batchItems[0].teacher) {
        const t = new Float32Array(batchItems.length * numLabels)
        batchItems.forEach((it, b) => t.set(it.teacher!, b * numLabels))
        return { batch, loss: { clsTeacherLogits: t, clsRows: batchItems.length, clsNumLabels: numLabels, clsTemperature: temperature } }
      }
      return { batch, loss: { clsLabels: Int32Array.from(batchItems.map(i => i.label!)) } }
    }
  }
}

/** Accuracy of the classifier head on labeled examples. */
export async function classifierAccuracy (model: MaskedLM, labels: readonly string[], examples: readonly Example[],
  inputs: readonly ClassifierInput[], batchSize: number, shard?: ScoreShard): Promise<number> {
  return accuracy(examples, await classifyExamples(model, labels, inputs, batchSize, { shard }), labels).accuracy
}

/**
 * Loads a saved classifier checkpoint and scores it on labeled examples (the test split of a run, else dev):
 * the accuracy and the per-label breakdown; with `shard`, sharded over the workers of a distributed run.
 */
export async function evaluateClassifier (dir: string, load: Partial<LoadOptions>, labels: readonly string[], split: string,
  examples: readonly Example[], fields: readonly string[], maxLength: number, batchSize: number,
  shard?: ScoreShard): Promise<{ accuracy: number, breakdown: LabelBreakdown }> {
  const best = await MaskedLM.load(dir, load)
  try {
    best.addClassifier(labels.length)
    const preds = await classifyExamples(best, labels, examples.map(e => encodePlain(best, e, fields, maxLength)), batchSize, { shard })
    return { accuracy: accuracy(examples, preds, labels).accuracy, breakdown: labelBreakdown(split, labels, examples, preds) }
  } finally {
    best.dispose()
  }
}
