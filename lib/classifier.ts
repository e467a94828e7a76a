// Classifier: whatever a training workflow wrote — a PET run, a fine-tuned or distilled [CLS] classifier, a
// P-tuning adapter on its base model — loaded by one call and used to classify texts or records.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fieldMap, loadExamples, type DataRecord, type Example } from './data/examples'
import { PetError } from './errors'
import { MaskedLM } from './model'
import { classifyExamples, encodePlain } from './pet/cls-head'
import { Pattern } from './pet/pattern'
import { scoreExamples, type Prediction, type ScoreShard } from './pet/score'
import { readTask, type PetTask } from './pet/task'
import { Verbalizer } from './pet/verbalizer'
import type { Control } from './progress'
import { loadAdapter, readAdapterConfig } from './ptuning/adapter'
import { optionTable, precisions, type Precision } from './options'
import * as v from './validate'

/** How Classifier.load runs the trained model: the device, threads, precision, batch size and text field. */
export interface ClassifierLoadOptions {
  /** for an adapter: the base model to plug it onto (default: the base it was trained on) */
  model?: string
  device?: string
  threads?: number
  /** 'fp32' (default) or 'bf16' GEMMs */
  precision?: Precision
  /** record key of the text for one-field tasks (default 'text', falling back to 'sentence') */
  textField?: string
  /** examples per batch (default 64) */
  batchSize?: number
}

/** classify()'s options: the batch size, an AbortSignal and onProgress. */
export interface ClassifyOptions extends Control {
  batchSize?: number
}

/** predictExamples' options: a worker of a distributed run scores its share of the batches (lib use). */
interface PredictOptions extends ClassifyOptions { shard?: ScoreShard }

/** One classified input: the predicted label (the most probable) and every label's probability and score. */
export interface Classification {
  label: string
  /** probability of each label (softmax of the scores) */
  probs: Record<string, number>
  /** each label's score (PET: the verbalizer rule; [CLS] head: its logit) */
  scores: Record<string, number>
}

/** What Classifier.load found: a PET model (cloze + verbalizer), a [CLS] classifier (finetune, distill) or a P-tuning adapter. */
export type ClassifierKind = 'pet' | 'classifier' | 'ptuning'

/** A prediction's scores and probabilities keyed by label. */
export function toClassification (labels: readonly string[], p: Prediction): Classification {
  return {
    label: p.label,
    probs: Object.fromEntries(labels.map((l, j) => [l, p.probs[j]])),
    scores: Object.fromEntries(labels.map((l, j) => [l, p.scores[j]]))
  }
}

/** The trained output in `dir`: a checkpoint (pet.json), an adapter (adapter_config.json), or a run directory. */
function locate (dir: string): { kind: 'task' | 'adapter', dir: string } {
  const abs = path.resolve(dir)
  if (fs.existsSync(path.join(abs, 'adapter_config.json'))) return { kind: 'adapter', dir: abs }
  if (fs.existsSync(path.join(abs, 'pet.json'))) return { kind: 'task', dir: abs }
  if (fs.existsSync(path.join(abs, 'adapter', 'adapter_config.json'))) return { kind: 'adapter', dir: path.join(abs, 'adapter') }
  if (fs.existsSync(path.join(abs, 'best'))) return locate(path.join(abs, 'best'))
  throw new PetError(`${abs} holds no trained model: expected pet.json (pet train, finetune, distill, ptune --mode full), ` +
    'adapter_config.json (pet ptune), or a run directory with best/', 'ENOENT')
}

/**
 * Whatever a training workflow wrote — a PET run, a fine-tuned or distilled [CLS] classifier, a P-tuning adapter on
 * its base model — loaded by `Classifier.load(dir)` and used to classify texts or records; `dispose()` frees it.
 */
export class Classifier {
  /** where the trained output was read from */
  readonly dir: string
  readonly kind: ClassifierKind
  readonly labels: readonly string[]
  /** the record fields the task reads */
  readonly fields: readonly string[]
  readonly #model: MaskedLM
  readonly #task: PetTask
  readonly #pattern?: Pattern
  readonly #verbalizer?: Verbalizer
  readonly #textField: string
  readonly #batchSize: number

  private constructor (dir: string, kind: ClassifierKind, model: MaskedLM, task: PetTask, o: Required<Pick<ClassifierLoadOptions, 'textField' | 'batchSize'>>) {
    this.dir = dir
    this.kind = kind
    this.#model = model
    this.#task = task
    this.labels = task.labels
    this.fields = task.fields
    this.#textField = o.textField
    this.#batchSize = o.batchSize
    if (task.mode === 'pet') {
      this.#pattern = new Pattern(task.pattern!)
      this.#verbalizer = new Verbalizer(task.verbalizer!, model.tokenizer, this.#pattern)
    }
  }

  /** Loads the output of any training workflow (a run directory, its best/, or an adapter folder). */
  static async load (dir: string, options?: ClassifierLoadOptions): Promise<Classifier> {
    v.string(dir, 'dir')
    const o = v.options<Required<Pick<ClassifierLoadOptions, 'textField' | 'batchSize'>> & ClassifierLoadOptions>(options, 'Classifier.load options', { textField: 'text', batchSize: 64 }, {
      model: (x, n) => v.string(x, n),
      device: (x, n) => v.string(x, n),
      threads: (x, n) => v.integer(x, n, optionTable.threads.min, optionTable.threads.max),
      precision: (x, n) => v.oneOf(x, n, precisions),
      textField: (x, n) => v.string(x, n),
      batchSize: (x, n) => v.integer(x, n, 1, 65536)
    })
    const found = locate(dir)
    const load = { device: o.device, threads: o.threads, precision: o.precision }
    if (found.kind === 'adapter') {
      const c = readAdapterConfig(found.dir)
      const task: PetTask = { mode: 'pet', labels: c.labels, pattern: c.pattern, verbalizer: c.verbalizer, labelScores: c.label_scores, maxLength: c.max_length, fields: c.fields }
      const model = await MaskedLM.load(o.model ?? c.base_model_name_or_path, load)
      try {
        loadAdapter(model, found.dir)
        return new Classifier(found.dir, 'ptuning', model, task, o)
      } catch (err) {
        model.dispose()
        throw err
      }
    }
    const task = readTask(found.dir)!
    const model = await MaskedLM.load(found.dir, load)
    try {
      if (task.mode === 'classifier') model.addClassifier(task.labels.length)
      return new Classifier(found.dir, task.mode, model, task, o)
    } catch (err) {
      model.dispose()
      throw err
    }
  }

  /**
   * Labels for texts (strings) or records (objects with the task's fields), in order. Concurrent calls on one
   * classifier return what serial calls return.
   */
  async classify (inputs: string | readonly DataRecord[], options?: ClassifyOptions): Promise<Classification[]> {
    const list = typeof inputs === 'string' ? [inputs] : inputs
    v.data(list, 'inputs')
    const examples = loadExamples(list, this.fields, fieldMap(this.fields, { textField: this.#textField, labelField: undefined }), 'inputs')
    return (await this.predictExamples(examples, options)).map(p => this.classification(p))
  }

  /** Predictions for examples already read (lib use: predict, evaluation). */
  async predictExamples (examples: readonly Example[], options?: PredictOptions): Promise<Prediction[]> {
    const o = v.options<PredictOptions>(options, 'classify options', {}, {
      shard: x => x as ScoreShard | undefined,
      batchSize: (x, n) => v.integer(x, n, 1, 65536),
      signal: (x, n) => v.optionValue(optionTable.signal, x, n) as AbortSignal,
      onProgress: (x, n) => v.optionValue(optionTable.onProgress, x, n) as ClassifyOptions['onProgress']
    })
    const batchSize = o.batchSize ?? this.#batchSize
    if (this.#task.mode === 'pet') {
      return await scoreExamples(this.#model, this.#pattern!, this.#verbalizer!, examples, {
        batchSize, maxLength: this.#task.maxLength, labelScores: this.#task.labelScores, signal: o.signal, onProgress: o.onProgress, shard: o.shard
      })
    }
    const inputs = examples.map(e => encodePlain(this.#model, e, this.fields, this.#task.maxLength))
    return await classifyExamples(this.#model, this.labels, inputs, batchSize, o)
  }

  classification (p: Prediction): Classification { return toClassification(this.labels, p) }

  /** Frees the model; later classify calls fail with a PetError. */
  dispose (): void { this.#model.dispose() }
}
