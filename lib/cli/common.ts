// Flags and steps shared by the training commands.
import * as path from 'node:path'
import { toExamples, type Example } from '../data/examples'
import { readJsonl } from '../data/jsonl'
import { writeFileAtomic } from '../atomic-write'
import type { LoopOptions, LoopResult } from '../train/loop'
import { choice, floatFlag, intFlag, labelMapFlag, type Options } from './args'

export const dataFlags: Options = {
  model: { type: 'string' },
  train: { type: 'string' },
  dev: { type: 'string' },
  test: { type: 'string' },
  'text-field': { type: 'string' },
  'label-field': { type: 'string' },
  'label-map': { type: 'string' },
  'limit-train': { type: 'string' },
  'max-length': { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' }
}

export const loopFlags: Options = {
  epochs: { type: 'string' },
  lr: { type: 'string' },
  'batch-size': { type: 'string' },
  'eval-batch-size': { type: 'string' },
  'weight-decay': { type: 'string' },
  warmup: { type: 'string' },
  'max-grad-norm': { type: 'string' },
  seed: { type: 'string' },
  patience: { type: 'string' },
  resume: { type: 'boolean' }
}

export const dataUsage = `  data:  --model DIR (default: the bundled zh-mini-mlm) --train FILE [--dev FILE] [--test FILE]
         [--text-field text] [--label-field label] [--label-map JSON] [--limit-train N] [--max-length 128]
         [--device cpu|cuda] [--threads N] [--out DIR] [--json]
  loop:  [--epochs 30] [--lr 1e-4] [--batch-size 16] [--eval-batch-size 64] [--weight-decay 0.01]
         [--warmup 0 (share of steps)] [--max-grad-norm 1] [--seed 42] [--patience 0 (epochs; 0 = off)] [--resume]`

type Values = Record<string, string | boolean | undefined>

export function loopOptions (a: Values, outDir: string, trainable: LoopOptions['trainable'], defaults: { lr: number, epochs: number, batchSize: number }): LoopOptions {
  return {
    epochs: intFlag(a, 'epochs', defaults.epochs),
    batchSize: intFlag(a, 'batch-size', defaults.batchSize),
    lr: floatFlag(a, 'lr', defaults.lr),
    weightDecay: floatFlag(a, 'weight-decay', 0.01),
    warmupRatio: floatFlag(a, 'warmup', 0),
    maxGradNorm: floatFlag(a, 'max-grad-norm', 1),
    seed: intFlag(a, 'seed', 42, 0),
    patience: intFlag(a, 'patience', 0, 0),
    outDir,
    resume: a.resume === true,
    quiet: a.json === true,
    trainable
  }
}

export function loadFlags (a: Values): { device: string, threads?: number } {
  return { device: (a.device as string | undefined) ?? 'cpu', threads: a.threads === undefined ? undefined : intFlag(a, 'threads', 1) }
}

export interface Splits { train: Example[], dev?: Example[], test?: Example[] }

/** Reads --train/--dev/--test with the pattern's fields and the label field. */
export function readSplits (a: Values, fields: readonly string[], required: string): Splits {
  const textField = (a['text-field'] as string | undefined) ?? 'text'
  const labelField = (a['label-field'] as string | undefined) ?? 'label'
  const labelMap = labelMapFlag(a)
  const map = { fields: fields.length === 1 && textField !== 'text' ? { [fields[0]]: textField } : undefined, labelField, labelMap }
  const read = (file: string | undefined) => file === undefined ? undefined : toExamples(readJsonl(file), fields, file, map)
  let train = read(required)!
  const limit = a['limit-train'] === undefined ? undefined : intFlag(a, 'limit-train', 1)
  if (limit !== undefined) train = train.slice(0, limit)
  return { train, dev: read(a.dev as string | undefined), test: read(a.test as string | undefined) }
}

export function defaultOutDir (command: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19)
  return path.resolve('runs', `${command}-${stamp}`)
}

/** report.json and report.md in the run directory. */
export function writeReport (outDir: string, title: string, summary: Record<string, unknown>, result: LoopResult): void {
  const report = { ...summary, history: result.history }
  writeFileAtomic(path.join(outDir, 'report.json'), JSON.stringify(report, null, 2) + '\n')
  const pct = (x: unknown) => typeof x === 'number' ? (100 * x).toFixed(2) : '—'
  const lines = [
    `# ${title}`, '',
    '| | value |', '|---|---|',
    ...Object.entries(summary).filter(([, v]) => typeof v !== 'object').map(([k, v]) => `| ${k} | ${/accuracy/.test(k) ? pct(v) + ' %' : String(v)} |`),
    '', '| epoch | train loss | dev accuracy | seconds |', '|---|---|---|---|',
    ...result.history.map(h => `| ${h.epoch} | ${h.loss.toFixed(4)} | ${pct(h.dev)} | ${h.seconds.toFixed(1)} |`)
  ]
  writeFileAtomic(path.join(outDir, 'report.md'), lines.join('\n') + '\n')
}

export { choice }
