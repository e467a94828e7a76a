// The benchmark report as a plain-text table (stdout) and as markdown (bench.md).
import * as path from 'node:path'
import type { BenchReport, SideReport } from './index'
import { formatSpread } from './stats'

function header (r: BenchReport): string[] {
  const m = r.machine
  const c = r.conditions
  const env = Object.entries(m.env).map(([k, v]) => `${k}=${v}`).join(' ')
  return [
    `machine: ${m.cpu}, ${m.cores} cores @ ${m.mhz} MHz, ${m.memoryGb} GB; ${m.platform}; Node ${m.node}`,
    `ours: LibTorch ${m.torch}, BLAS ${m.blas} (${m.blasLibrary || 'n/a'}), ` +
      `layer kernels ${r.ours.kernels === 'onednn' ? `oneDNN ${m.onednn}` : "ATen's ops"}, ` +
      `${r.config.schedule === 'plain' ? 'one plain forward pass (--schedule plain), ' : ''}` +
      `${r.ours.threads ?? m.threads} intra-op threads${env ? `; ${env}` : ''}`,
    `CPU: ${r.cpu.isa.join(', ') || 'ISA unknown'}; GEMM rate at start (${r.cpu.gemm.shape.join(' x ')}, ${r.cpu.gemm.kernels === 'onednn' ? 'oneDNN' : 'ATen'} layer kernels, one per core on ${r.cpu.gemm.threads}): ` +
      `fp32 ${r.cpu.gemm.fp32_gflop_per_s.toFixed(0)} GFLOP/s, bf16 ${r.cpu.gemm.bf16_gflop_per_s.toFixed(0)} GFLOP/s`,
    ...(r.peer?.versions ? [`peer: transformers.js ${r.peer.versions['@huggingface/transformers']}, onnxruntime-node ${r.peer.versions['onnxruntime-node']}, fp32, cpu`] : []),
    `conditions: ${c.started} .. ${c.finished} (${c.seconds.toFixed(0)} s); 1-min load average ${c.load1_start} at start, ${c.load1_end} at end, max ${c.load1_max} between runs`,
    `data: ${path.basename(r.config.data)} (${r.ours.n} sentences), pattern ${r.config.pattern}, verbalizer ${r.config.verbalizer}, ` +
      `max length ${r.config.maxLength}, batches ${r.config.order === 'sorted' ? 'length-sorted' : 'in dataset order'}, padded to the longest; ` +
      `${r.config.runs} run(s), figures min / median / max; tokenization excluded (ours ${r.ours.tokenize_ms.median.toFixed(0)} ms for all)`
  ]
}

interface Row { side: string, batch: string, rate: string, p50: string, p95: string, acc: string, gflops: string, executed: string, waste: string }

function rows (name: string, s: SideReport): Row[] {
  return s.by_batch_size.map(b => ({
    side: name,
    batch: String(b.batch_size) + (b.batch_size === s.best_batch_size ? '*' : ''),
    rate: formatSpread(b.sentences_per_s),
    p50: formatSpread(b.p50_ms),
    p95: formatSpread(b.p95_ms),
    acc: b.accuracy === null ? '–' : `${b.accuracy.toFixed(4)} (${b.correct}/${b.labeled})`,
    gflops: formatSpread(b.encoder_gflop_per_s),
    executed: `${b.executed_gflop_per_s.median.toFixed(1)}` + (b.gemm_share === null ? '' : ` (${(b.gemm_share * 100).toFixed(0)}%)`),
    waste: `${(b.padding_waste * 100).toFixed(1)}%`
  }))
}

const columns: [keyof Row, string][] = [
  ['side', 'side'], ['batch', 'batch'], ['rate', 'sentences/s'], ['p50', 'p50 batch ms'], ['p95', 'p95 batch ms'],
  ['acc', 'accuracy'], ['gflops', 'encoder GFLOP/s'], ['executed', 'executed GFLOP/s (of GEMM rate)'], ['waste', 'padding']
]

function allRows (r: BenchReport): Row[] {
  return [...rows('ours', r.ours), ...rows('ours bf16', r.ours_bf16), ...(r.peer ? rows('peer', r.peer) : [])]
}

/** The causal LM's lines: scoring per precision and batch size, training, and the label-count sweep. */
function gptLines (r: BenchReport): string[] {
  const g = r.gpt
  if (!g) return []
  const side = (name: string, s: typeof g.fp32) => `${name} ` + s.by_batch_size.map(b =>
    `b${b.batch_size}${b.batch_size === s.best_batch_size ? '*' : ''} ${formatSpread(b.sentences_per_s)}/s`).join(', ') +
    `; accuracy ${s.by_batch_size[0].accuracy?.toFixed(4) ?? '–'}; peak RSS ${formatSpread(s.peak_rss_mb, 0)} MB`
  const out = [`GPT ${path.basename(g.model)}, pattern ${g.pattern}, zero-shot (one pass per example: the prefix once, each word a branch): ` +
    `${side('fp32', g.fp32)}; ${side('bf16', g.bf16)}; bf16 labels equal ${(g.bf16_label_agreement * 100).toFixed(2)}%; ` +
    `GPT / BERT fp32 ${(g.fp32.best_sentences_per_s / r.ours_sentences_per_s).toFixed(2)}x`]
  for (const [name, t] of [['fp32', g.training], ['bf16', g.training_bf16]] as const) {
    if (!t) continue
    out.push(`GPT training ${name} (LM loss over the cloze with the gold word, AdamW, batch ${t.batch_size}, mean padded length ${t.mean_seq_len.toFixed(0)}): ` +
      `${formatSpread(t.steps_per_s, 2)} steps/s; loss ${t.first_loss.toFixed(3)} -> ${t.last_loss.toFixed(3)}`)
  }
  const base = g.labels.rows[0].sentencesPerS
  out.push(`GPT labels (fp32, batch ${g.labels.batchSize}, one run): ` + g.labels.rows.map(x =>
    `${x.case}: ${x.sentencesPerS.toFixed(1)}/s (${(x.sentencesPerS / base).toFixed(2)}x of 2 labels), ` +
    `${x.tokensPerExample.toFixed(0)} tokens per example vs ${x.separatePassTokens.toFixed(0)} in separate passes`).join('; '))
  return out
}

function footer (r: BenchReport): string[] {
  const out: string[] = []
  const rss = [`ours scoring ${formatSpread(r.ours.peak_rss_mb, 0)}`]
  if (r.training) rss.push(`ours training ${formatSpread(r.training.peak_rss_mb, 0)}`)
  if (r.training_bf16) rss.push(`ours training bf16 ${formatSpread(r.training_bf16.peak_rss_mb, 0)}`)
  if (r.peer) rss.push(`peer scoring ${formatSpread(r.peer.peak_rss_mb, 0)}`)
  for (const [name, t] of [['fp32', r.training], ['bf16', r.training_bf16]] as const) {
    if (!t) continue
    out.push(`training ${name} (ours, PET: candidate loss + 15% masked tokens, AdamW, batch ${t.batch_size}, mean padded length ${t.mean_seq_len.toFixed(0)}, ` +
      `${t.steps} timed steps): ${formatSpread(t.steps_per_s, 2)} steps/s; step p50 ${formatSpread(t.step_p50_ms, 0)} ms; loss ${t.first_loss.toFixed(3)} -> ${t.last_loss.toFixed(3)}`)
  }
  out.push(`bf16 vs fp32 (ours, best batch sizes): ${(r.ours_bf16_sentences_per_s / r.ours_sentences_per_s).toFixed(2)}x sentences/s; ` +
    `labels equal ${(r.bf16_label_agreement * 100).toFixed(2)}%; accuracy fp32 ${r.ours_accuracy?.toFixed(4)}, bf16 ${r.ours_bf16_accuracy?.toFixed(4)}` +
    (r.train_steps_per_s && r.train_bf16_steps_per_s ? `; training ${(r.train_bf16_steps_per_s / r.train_steps_per_s).toFixed(2)}x steps/s` : ''))
  out.push(`peak RSS MB: ${rss.join('; ')}`)
  out.push(...gptLines(r))
  const split = (name: string, sr: SideReport) => {
    const b = sr.by_batch_size.find(x => x.batch_size === sr.best_batch_size)!
    return `${name} (batch ${b.batch_size}): JS batch building ${b.split_s.prep.toFixed(2)} s, model call ${b.split_s.call.toFixed(2)} s, ` +
      `reading results ${b.split_s.post.toFixed(2)} s; computed ${b.executed_gflop.toFixed(0)} GFLOP at ${b.executed_gflop_per_s.median.toFixed(1)} GFLOP/s`
  }
  out.push(`one pass, median run: ${split('ours', r.ours)}` + (r.peer ? `; ${split('peer', r.peer)}` : '') +
    ' (computed: ours the encoder with its last layer only at the [MASK] rows; peer the encoder and the MLM head at every position)')
  out.push(`labels identical across batch sizes and runs: ours ${r.ours.n - r.ours.label_changes}/${r.ours.n}` +
    (r.peer ? `, peer ${r.peer.n - r.peer.label_changes}/${r.peer.n}` : ''))
  if (r.peer && r.agreement) {
    out.push(`best: ours ${r.ours_sentences_per_s.toFixed(1)}/s (batch ${r.ours.best_batch_size}), peer ${r.peer_sentences_per_s!.toFixed(1)}/s ` +
      `(batch ${r.peer.best_batch_size}): ratio ours/peer ${r.ratio!.toFixed(2)}; predicted labels agree ${r.agreement.same}/${r.agreement.of}; ` +
      `accuracy ours ${r.ours_accuracy?.toFixed(4)}, peer ${r.peer_accuracy?.toFixed(4)}` +
      (r.peer.tokenizer_agree !== undefined ? `; transformers.js tokenizer gives our input ids for ${r.peer.tokenizer_agree}/${r.peer.tokenizer_checked ?? r.peer.n}` : ''))
  } else {
    out.push(`best: ours ${r.ours_sentences_per_s.toFixed(1)}/s (batch ${r.ours.best_batch_size}); peer not run`)
  }
  return out
}

export function renderText (r: BenchReport): string {
  const table = allRows(r)
  const widths = columns.map(([k, title]) => Math.max(title.length, ...table.map(row => row[k].length)))
  const line = (cells: string[]) => cells.map((c, i) => i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ')
  return [
    ...header(r),
    '',
    line(columns.map(c => c[1])),
    ...table.map(row => line(columns.map(([k]) => row[k]))),
    '(* best batch size by median sentences/s)',
    '',
    ...footer(r)
  ].join('\n') + '\n'
}

export function renderMarkdown (r: BenchReport): string {
  const table = allRows(r)
  return [
    '# pet bench',
    '',
    ...header(r).map(l => `- ${l}`),
    '',
    `| ${columns.map(c => c[1]).join(' | ')} |`,
    `|${columns.map((_, i) => i < 2 ? '---' : '---:').join('|')}|`,
    ...table.map(row => `| ${columns.map(([k]) => row[k]).join(' | ')} |`),
    '',
    '\\* best batch size by median sentences/s',
    '',
    ...footer(r).map(l => `- ${l}`)
  ].join('\n') + '\n'
}
