// A small SVG chart of one training run, written beside report.md: training loss and dev accuracy per epoch,
// the best epoch marked. Drawn by Apache ECharts, a well-kept charting library whose CommonJS build renders an
// SVG string server-side (`ssr: true`) in plain Node, with no DOM, canvas or native code. (Vega was the other
// candidate, but it is ESM-only with top-level await, so this CommonJS package cannot require() it.)
// Loaded when a chart is drawn (~0.2 s), not when the package is: `pet zero-shot` and the library root stay quick.
import type * as Echarts from 'echarts'

/** One epoch's point on the chart: its training loss and dev accuracy. */
export interface ChartEpoch { epoch: number, loss: number, dev?: number }

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x)
const LOSS = '#d9480f'
const DEV = '#1971c2'

/** An SVG chart of training loss and dev accuracy per epoch, best epoch marked. */
export async function historyChartSvg (history: readonly ChartEpoch[], options: { title: string, bestEpoch?: number }): Promise<string> {
  // Non-finite points are dropped rather than drawn as gaps or thrown on: a diverged epoch must not lose the chart.
  const points = (key: 'loss' | 'dev') => history.flatMap(h => finite(h.epoch) && finite(h[key]) ? [[h.epoch, h[key]]] : [])
  const loss = points('loss')
  const dev = points('dev')
  const epochs = [...loss, ...dev].map(p => p[0])
  const best = finite(options.bestEpoch) ? options.bestEpoch : undefined
  if (best !== undefined) epochs.push(best)
  const lo = epochs.length > 0 ? Math.min(...epochs) : 0
  const hi = epochs.length > 0 ? Math.max(...epochs) : 1
  const symbolSize = Math.max(loss.length, dev.length) > 60 ? 3 : 6 // dots stay apart up to ~100 epochs

  const series: Echarts.SeriesOption[] = [
    { name: 'training loss', type: 'line', yAxisIndex: 0, data: loss, color: LOSS, symbolSize, showAllSymbol: true }
  ]
  if (dev.length > 0) {
    series.push({ name: 'dev accuracy', type: 'line', yAxisIndex: 1, data: dev, color: DEV, symbolSize, showAllSymbol: true })
  }
  if (best !== undefined) {
    const atBest = dev.find(p => p[0] === best)
    const label = `best: epoch ${best}` + (atBest ? ` (dev ${(100 * atBest[1]).toFixed(1)} %)` : '')
    // A series of its own, so the data series hold exactly one symbol per epoch.
    series.push({
      name: 'best', type: 'line', data: [],
      markLine: {
        silent: true, symbol: 'none', data: [{ xAxis: best }],
        lineStyle: { color: '#2b8a3e', type: 'dashed', width: 1.5 },
        label: { formatter: label, position: 'end', color: '#2b8a3e' }
      }
    })
  }

  const echarts = require('echarts') as typeof Echarts
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: 720, height: 400 })
  try {
    chart.setOption({
      animation: false,
      backgroundColor: '#fff',
      title: { text: options.title, left: 'center', top: 6, textStyle: { fontSize: 14 } },
      // Loss alone needs no legend: its axis is named and coloured.
      legend: { show: dev.length > 0, data: ['training loss', 'dev accuracy'], top: 30, itemGap: 24 },
      grid: { left: 64, right: dev.length > 0 ? 64 : 24, top: 80, bottom: 48 },
      // A single epoch gets a little room either side instead of a zero-width axis.
      xAxis: { type: 'value', name: 'epoch', nameLocation: 'middle', nameGap: 28, minInterval: 1, min: lo === hi ? lo - 1 : lo, max: lo === hi ? hi + 1 : hi },
      yAxis: [
        { type: 'value', name: 'loss', scale: true, nameTextStyle: { color: LOSS } },
        // Accuracy keeps its natural 0–1 range so runs compare at a glance (widened if a value lies outside it).
        { type: 'value', name: 'dev accuracy', show: dev.length > 0, min: (v: { min: number }) => Math.min(0, v.min), max: (v: { max: number }) => Math.max(1, v.max), splitLine: { show: false }, nameTextStyle: { color: DEV } }
      ],
      series
    })
    return deterministicIds(chart.renderToSVGString())
  } finally {
    chart.dispose()
  }
}

/** zrender numbers clip-path ids and classes from process-wide counters; renumber them by first appearance
 * so that the same history always gives byte-identical SVG. */
function deterministicIds (svg: string): string {
  const ids = new Map<string, string>()
  return svg.replace(/\bzr\d+-[\w-]+/g, id => {
    if (!ids.has(id)) ids.set(id, `chart-${ids.size}`)
    return ids.get(id) as string
  })
}
