import * as fs from 'node:fs'
import * as path from 'node:path'
import { writeFileAtomic } from '../atomic-write'
import { renderMarkdown, renderText, runBench } from '../bench'
import type { BatchOrder } from '../bench/inputs'
import { defaultModelDir } from '../model'
import { packageRoot } from '../native'
import { choice, intFlag, Output, parse, UsageError } from './args'

const sharedData = path.resolve(packageRoot, '../shared/datasets/sentiment/test.jsonl')
const bundledData = path.join(packageRoot, 'data/sentiment/test.jsonl')
const defaultPeerModel = path.resolve(packageRoot, '../shared/models/zh-mini-mlm-onnx')

export const usage = `pet bench [--data FILE.jsonl] [--limit N] [--model DIR] [--peer-model DIR] [--no-peer]
    [--pattern '[MASK]满意。{text}'] [--verbalizer '{"positive":["很"],"negative":["不"]}']
    [--batch-sizes 1,8,32,128] [--runs 5] [--max-length 128] [--order sorted|dataset] [--warmup-batches 2]
    [--no-train] [--train-batch-size 32] [--train-steps 10] [--threads N]
    [--out-json bench-results/bench.json] [--out-md bench-results/bench.md] [--json]
  Zero-shot scoring throughput (sentences/s, p50/p95 batch latency) of ours and of transformers.js
  (onnxruntime-node, fp32, cpu) on the same padded batches, PET training steps/s and peak RSS; every figure
  min / median / max over --runs fresh processes per side. --data defaults to ../shared/datasets/sentiment/
  test.jsonl (else the bundled copy). With --json the last stdout line is {"ours_sentences_per_s":…,
  "peer_sentences_per_s":…, "ratio":…, …}.`

function intList (v: unknown, name: string): number[] {
  if (v === undefined) return [1, 8, 32, 128]
  const xs = String(v).split(',').map(s => Number(s.trim()))
  if (xs.length === 0 || !xs.every(x => Number.isInteger(x) && x >= 1)) {
    throw new UsageError(`--${name} must be a comma-separated list of integers >= 1, got '${String(v)}'`)
  }
  return [...new Set(xs)]
}

export async function run (argv: string[]): Promise<void> {
  const a = parse(argv, {
    data: { type: 'string' },
    limit: { type: 'string' },
    model: { type: 'string' },
    'peer-model': { type: 'string' },
    'no-peer': { type: 'boolean' },
    pattern: { type: 'string' },
    verbalizer: { type: 'string' },
    'batch-sizes': { type: 'string' },
    runs: { type: 'string' },
    'max-length': { type: 'string' },
    order: { type: 'string' },
    'warmup-batches': { type: 'string' },
    'no-train': { type: 'boolean' },
    'train-batch-size': { type: 'string' },
    'train-steps': { type: 'string' },
    threads: { type: 'string' },
    'out-json': { type: 'string' },
    'out-md': { type: 'string' },
    json: { type: 'boolean' }
  })
  if (a.help) { console.log(usage); return }
  const out = new Output(a.json === true)
  const data = (a.data as string | undefined) ?? (fs.existsSync(sharedData) ? sharedData : bundledData)
  const outJson = (a['out-json'] as string | undefined) ?? 'bench-results/bench.json'
  const outMd = (a['out-md'] as string | undefined) ?? 'bench-results/bench.md'
  const report = await runBench({
    data: path.resolve(data),
    limit: a.limit === undefined ? undefined : intFlag(a, 'limit', 0, 1),
    model: path.resolve((a.model as string | undefined) ?? defaultModelDir),
    peerModel: path.resolve((a['peer-model'] as string | undefined) ?? defaultPeerModel),
    pattern: (a.pattern as string | undefined) ?? '[MASK]满意。{text}',
    verbalizer: (a.verbalizer as string | undefined) ?? '{"positive":["很"],"negative":["不"]}',
    batchSizes: intList(a['batch-sizes'], 'batch-sizes'),
    runs: intFlag(a, 'runs', 5),
    maxLength: intFlag(a, 'max-length', 128, 3),
    order: choice(a, 'order', ['sorted', 'dataset'] as const, 'sorted') as BatchOrder,
    warmupBatches: intFlag(a, 'warmup-batches', 2, 0),
    peer: a['no-peer'] !== true,
    train: a['no-train'] !== true,
    trainBatchSize: intFlag(a, 'train-batch-size', 32),
    trainSteps: intFlag(a, 'train-steps', 10),
    threads: a.threads === undefined ? undefined : intFlag(a, 'threads', 1),
    onProgress: msg => process.stderr.write(`pet bench: ${msg}\n`)
  })
  writeFileAtomic(outJson, JSON.stringify(report, null, 2) + '\n')
  writeFileAtomic(outMd, renderMarkdown(report))
  if (!out.json) process.stdout.write(renderText(report))
  out.line(`wrote ${outJson} and ${outMd}`)
  out.summary({
    ours_sentences_per_s: report.ours_sentences_per_s,
    peer_sentences_per_s: report.peer_sentences_per_s,
    ratio: report.ratio,
    ours_best_batch_size: report.ours.best_batch_size,
    peer_best_batch_size: report.peer?.best_batch_size ?? null,
    ours_accuracy: report.ours_accuracy,
    peer_accuracy: report.peer_accuracy,
    agreement: report.agreement,
    ours_peak_rss_mb: report.ours_peak_rss_mb,
    peer_peak_rss_mb: report.peer?.peak_rss_mb.max ?? null,
    train_steps_per_s: report.train_steps_per_s,
    n: report.ours.n,
    runs: report.config.runs,
    load1_start: report.conditions.load1_start,
    load1_end: report.conditions.load1_end,
    out_json: outJson,
    out_md: outMd
  })
}
