import * as fs from 'node:fs'
import * as path from 'node:path'
import { writeFileAtomic } from '../atomic-write'
import { renderMarkdown, renderText, runBench } from '../bench'
import type { BatchOrder } from '../bench/inputs'
import { defaultModelDir } from '../advanced'
import { packageRoot } from '../native'
import { defaultOf, type Schedule, workflows } from '../options'
import { cliWorkflow, flagUsage, hubModel, Output, parseFlags } from './command'

const sharedData = path.resolve(packageRoot, '../shared/datasets/sentiment/test.jsonl')
const bundledData = path.join(packageRoot, 'data/sentiment/test.jsonl')
const defaultPeerModel = path.resolve(packageRoot, '../shared/models/zh-mini-mlm-onnx')
const defaultGptModel = path.resolve(packageRoot, '../shared/models/zh-mini-gpt')

export const usage = `pet bench [options]
  Zero-shot scoring throughput (sentences/s, p50/p95 batch latency) of ours in fp32 and bf16 and of
  transformers.js (onnxruntime-node, fp32, cpu) on the same padded batches, PET training steps/s per precision
  and peak RSS; a causal LM (GPT-2, --gpt-model) beside them: scoring and training in both precisions, and its
  one-pass scoring with 2, 15 and 120 labels; every figure min / median / max over --runs fresh processes per side. The CPU's ISA and its
  GEMM rate per precision, measured at start, put the executed GFLOP/s in proportion. --data defaults to
  ../shared/datasets/sentiment/test.jsonl (else the bundled copy). With --json the last stdout line is
  {"ours_sentences_per_s":…, "ours_bf16_sentences_per_s":…, "bf16_label_agreement":…, "peer_sentences_per_s":…,
  "ratio":…, "train_steps_per_s":…, "train_bf16_steps_per_s":…, …}.

${flagUsage(cliWorkflow(workflows.bench))}`

export async function run (argv: string[]): Promise<void> {
  const { options, json, help } = parseFlags(argv, cliWorkflow(workflows.bench))
  if (help) { console.log(usage); return }
  const out = new Output(json)
  // biome-ignore lint/suspicious/noExplicitAny: the flags as parsed against the bench's option list
  const a = await hubModel(options, out) as Record<string, any>
  const d = (name: Parameters<typeof defaultOf>[1]) => a[name] ?? defaultOf(workflows.bench, name)
  const data = a.data ?? (fs.existsSync(sharedData) ? sharedData : bundledData)
  const report = await runBench({
    data: path.resolve(data),
    limit: a.limit,
    model: path.resolve(a.model ?? defaultModelDir),
    peerModel: path.resolve(a.peerModel ?? defaultPeerModel),
    pattern: d('pattern') as string,
    verbalizer: JSON.stringify(d('verbalizer')),
    batchSizes: d('batchSizes') as number[],
    runs: d('runs') as number,
    maxLength: d('maxLength') as number,
    order: d('order') as BatchOrder,
    warmupBatches: d('warmupBatches') as number,
    peer: a.noPeer !== true,
    train: a.noTrain !== true,
    trainBatchSize: d('trainBatchSize') as number,
    trainSteps: d('trainSteps') as number,
    threads: a.threads,
    schedule: d('schedule') as Schedule,
    kernels: a.kernels,
    gptModel: a.noGpt === true ? undefined : a.gptModel !== undefined ? path.resolve(a.gptModel) : fs.existsSync(defaultGptModel) ? defaultGptModel : undefined,
    gptPattern: d('gptPattern') as string,
    onProgress: msg => process.stderr.write(`pet bench: ${msg}\n`)
  })
  const outJson = d('outJson') as string
  const outMd = d('outMd') as string
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
    ours_bf16_sentences_per_s: report.ours_bf16_sentences_per_s,
    ours_bf16_accuracy: report.ours_bf16_accuracy,
    bf16_label_agreement: report.bf16_label_agreement,
    train_bf16_steps_per_s: report.train_bf16_steps_per_s,
    gpt_sentences_per_s: report.gpt?.fp32.best_sentences_per_s ?? null,
    gpt_bf16_sentences_per_s: report.gpt?.bf16.best_sentences_per_s ?? null,
    gpt_train_steps_per_s: report.gpt?.training?.steps_per_s.median ?? null,
    gpt_train_bf16_steps_per_s: report.gpt?.training_bf16?.steps_per_s.median ?? null,
    gpt_labels_sentences_per_s: report.gpt ? Object.fromEntries(report.gpt.labels.rows.map(r => [r.labels, r.sentencesPerS])) : null,
    cpu_isa: report.cpu.isa,
    gemm_fp32_gflop_per_s: report.cpu.gemm.fp32_gflop_per_s,
    gemm_bf16_gflop_per_s: report.cpu.gemm.bf16_gflop_per_s,
    n: report.ours.n,
    runs: report.config.runs,
    load1_start: report.conditions.load1_start,
    load1_end: report.conditions.load1_end,
    out_json: outJson,
    out_md: outMd
  })
}
