// A training run's report in its directory: report.json (the summary and the per-epoch history), report.md (the
// same as tables, linking the chart) and report.svg (loss and dev accuracy per epoch, best epoch marked).
import * as path from 'node:path'
import { writeFileAtomic } from '../atomic-write'
import type { EpochRecord } from '../train/loop'
import { historyChartSvg } from './chart'
import { breakdownMarkdown, type LabelBreakdown } from './per-label'
import { snakeKeys } from './snake-keys'
import { isWriter } from '../distributed/env'

/** The paths of a run's report.json, report.md and report.svg. */
export interface ReportFiles { json: string, md: string, chart: string }

/** `summary` holds the run's figures (camelCase keys; written snake_case, as the CLI's --json prints them). */
export async function writeReport (outDir: string, title: string, summary: Record<string, unknown>,
  history: readonly EpochRecord[], bestEpoch: number, breakdown?: LabelBreakdown): Promise<ReportFiles> {
  const files = { json: path.join(outDir, 'report.json'), md: path.join(outDir, 'report.md'), chart: path.join(outDir, 'report.svg') }
  if (!isWriter()) return files  // a distributed run's files are rank 0's to write
  const flat = snakeKeys(summary) as Record<string, unknown>
  writeFileAtomic(files.json, JSON.stringify({ ...flat, history, ...(breakdown ? snakeKeys({ labelBreakdown: breakdown }) as object : {}) }, null, 2) + '\n')
  writeFileAtomic(files.chart, await historyChartSvg(history, { title, bestEpoch }))
  const pct = (x: unknown) => typeof x === 'number' ? (100 * x).toFixed(2) : '—'
  const lines = [
    `# ${title}`, '',
    '![loss and dev accuracy per epoch](report.svg)', '',
    '| | value |', '|---|---|',
    ...Object.entries(flat).filter(([, v]) => typeof v !== 'object' || v === null)
      .map(([k, v]) => `| ${k} | ${/accuracy/.test(k) ? pct(v) + ' %' : String(v)} |`),
    '', '| epoch | train loss | dev accuracy | seconds |', '|---|---|---|---|',
    ...history.map(h => `| ${h.epoch}${h.epoch === bestEpoch ? ' (best)' : ''} | ${h.loss.toFixed(4)} | ${pct(h.dev)} | ${h.seconds.toFixed(1)} |`),
    ...(breakdown ? ['', ...breakdownMarkdown(breakdown)] : [])
  ]
  writeFileAtomic(files.md, lines.join('\n') + '\n')
  return files
}
