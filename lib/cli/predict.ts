import * as path from 'node:path'
import { writeFileAtomic } from '../atomic-write'
import { toExamples } from '../data/examples'
import { readJsonl } from '../data/jsonl'
import { PetError } from '../errors'
import { MaskedLM } from '../model'
import { classifyExamples, encodePlain } from '../pet/classifier'
import { Pattern } from '../pet/pattern'
import { accuracy, scoreExamples, type Prediction } from '../pet/score'
import { readTask, type PetTask } from '../pet/task'
import { loadAdapter, readAdapterConfig } from '../ptuning/adapter'
import { Verbalizer } from '../pet/verbalizer'
import { progress } from '../progress'
import { intFlag, Output, parse, required } from './args'

export const usage = `pet predict --model DIR [--prompt ADAPTER] --data FILE.jsonl [--text-field text] [--label-field label]
    [--out preds.jsonl] [--batch-size 64] [--device cpu] [--json]
  Predicts with a model trained by pet train / finetune / ptune (its pet.json holds the pattern, verbalizer and
  labels), or with a P-tuning adapter (--prompt, written by pet ptune) on its unchanged base model (--model).
  Prints the accuracy when the lines carry labels.`

export async function run (argv: string[]): Promise<void> {
  const a = parse(argv, {
    model: { type: 'string' }, prompt: { type: 'string' }, data: { type: 'string' }, 'text-field': { type: 'string' }, 'label-field': { type: 'string' },
    out: { type: 'string' }, 'batch-size': { type: 'string' }, device: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean' }
  })
  if (a.help) { console.log(usage); return }
  const out = new Output(a.json === true)
  const dir = required(a, 'model')
  const adapter = a.prompt ? readAdapterConfig(a.prompt as string) : undefined
  const task: PetTask | undefined = adapter
    ? { mode: 'pet', labels: adapter.labels, pattern: adapter.pattern, verbalizer: adapter.verbalizer, labelScores: adapter.label_scores, maxLength: adapter.max_length, fields: adapter.fields }
    : readTask(dir)
  if (!task) throw new PetError(`${path.join(dir, 'pet.json')} not found: predict needs a model trained by pet train or pet finetune`, 'ENOENT')
  const file = required(a, 'data')
  const textField = (a['text-field'] as string | undefined) ?? 'text'
  const examples = toExamples(readJsonl(file), task.fields, file, {
    fields: task.fields.length === 1 && textField !== 'text' ? { [task.fields[0]]: textField } : undefined,
    labelField: (a['label-field'] as string | undefined) ?? 'label'
  })
  const batchSize = intFlag(a, 'batch-size', 64)
  const model = await MaskedLM.load(dir, { device: (a.device as string | undefined) ?? 'cpu', threads: a.threads === undefined ? undefined : intFlag(a, 'threads', 1) })
  if (adapter) {
    try { loadAdapter(model, a.prompt as string) } catch (err) { model.dispose(); throw err }
  }
  const bar = progress('predict', examples.length, { quiet: out.json })
  try {
    let preds: Prediction[]
    if (task.mode === 'pet') {
      const pattern = new Pattern(task.pattern!)
      const verbalizer = new Verbalizer(task.verbalizer!, model.tokenizer)
      preds = await scoreExamples(model, pattern, verbalizer, examples, { batchSize, maxLength: task.maxLength, labelScores: task.labelScores, onProgress: d => bar.update(d) })
    } else {
      model.core.addClassifier(task.labels.length)
      preds = await classifyExamples(model, task.labels, examples.map(e => encodePlain(model, e, task.fields, task.maxLength)), batchSize, d => bar.update(d))
    }
    bar.stop()
    const labeled = examples.filter(e => e.label !== undefined).length
    let acc: number | null = null
    if (labeled > 0) {
      acc = accuracy(examples, preds, task.labels).accuracy
      out.line(`accuracy: ${acc.toFixed(4)} (${labeled} labeled)`)
    }
    const lines = preds.map((p, i) => JSON.stringify({ index: i, label: p.label, probs: Object.fromEntries(task.labels.map((l, j) => [l, p.probs[j]])) }))
    if (a.out) writeFileAtomic(a.out as string, lines.join('\n') + '\n')
    else if (!out.json) for (const l of lines) process.stdout.write(l + '\n')
    out.summary({ accuracy: acc, n: labeled, examples: examples.length, mode: task.mode, model: dir })
  } finally {
    model.dispose()
  }
}
