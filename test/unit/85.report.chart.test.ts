// The run chart: well-formed SVG, one mark per epoch and series, the best epoch marked where it belongs,
// byte-identical on re-render, and no throw on odd histories (loss only, one epoch, 100 epochs, NaN).
import t from 'tap'
import { type ChartEpoch, historyChartSvg } from '../../lib/report/chart'

interface Element { name: string, attrs: Record<string, string> }

/** Every start tag, and whether start and end tags nest properly (a cheap well-formedness check). */
function parse (svg: string): { elements: Element[], balanced: boolean } {
  const elements: Element[] = []
  const open: string[] = []
  let balanced = true
  for (const [, close, name, rest, selfClose] of svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)([^>]*?)(\/?)>/g)) {
    if (close) { if (open.pop() !== name) balanced = false; continue }
    elements.push({ name, attrs: Object.fromEntries([...rest.matchAll(/([\w:-]+)="([^"]*)"/g)].map(m => [m[1], m[2]])) })
    if (!selfClose) open.push(name)
  }
  return { elements, balanced: balanced && open.length === 0 }
}

/** ECharts tags each drawn data point with its series and data index: the symbols of one series. */
const symbols = (svg: string, series: number) => parse(svg).elements.filter(e =>
  e.attrs.ecmeta_ssr_type === 'chart' && e.attrs.ecmeta_series_index === String(series) && e.attrs.transform !== undefined)
const xOf = (e: Element) => Number(/matrix\([^,]+,[^,]+,[^,]+,[^,]+,([^,]+),/.exec(e.attrs.transform)?.[1])
const count = (s: string, sub: string) => s.split(sub).length - 1

const history: ChartEpoch[] = Array.from({ length: 12 }, (_, i) => ({
  epoch: i + 1, loss: 1.2 * Math.exp(-i / 4), dev: 0.5 + 0.4 * (1 - Math.exp(-i / 3))
}))

t.test('a well-formed SVG with one symbol per epoch for loss and dev', async t => {
  const svg = await historyChartSvg(history, { title: 'tnews <pet> & co', bestEpoch: 9 })
  t.ok(svg.startsWith('<svg'), 'starts with <svg')
  t.ok(svg.trimEnd().endsWith('</svg>'))
  t.equal(count(svg, '<svg'), 1)
  t.equal(count(svg, '</svg>'), 1)
  t.ok(parse(svg).balanced, 'tags nest')
  t.match(svg, 'tnews &lt;pet&gt; &amp; co', 'the title is escaped')
  t.notMatch(svg, '<pet>')
  const loss = symbols(svg, 0)
  const dev = symbols(svg, 1)
  t.equal(loss.length, 12)
  t.equal(dev.length, 12)
  t.same(loss.map(e => Number(e.attrs.ecmeta_data_index)), [...Array(12).keys()])
  const xs = loss.map(xOf)
  t.ok(xs.every((x, i) => i === 0 || x > xs[i - 1]), 'epochs run left to right')
  t.same(dev.map(xOf), xs, 'dev points sit on the same epochs')
})

t.test('the best epoch is marked, at its epoch', async t => {
  const svg = await historyChartSvg(history, { title: 'run', bestEpoch: 9 })
  t.match(svg, /best: epoch 9 \(dev \d+\.\d %\)/)
  const marker = parse(svg).elements.find(e => e.attrs.ecmeta_series_index === '2' && e.name === 'path')
  t.ok(marker, 'a marker line')
  const markerX = Number(/^M([\d.]+) /.exec(marker?.attrs.d ?? '')?.[1])
  t.ok(Math.abs(markerX - xOf(symbols(svg, 0)[8])) < 1, `marker x ${markerX} at epoch 9`)
  t.notMatch(await historyChartSvg(history, { title: 'run' }), 'best', 'no marker without a best epoch')
})

t.test('byte-identical on re-render, whatever was drawn in between', async t => {
  const a = await historyChartSvg(history, { title: 'run', bestEpoch: 3 })
  await historyChartSvg(history.slice(0, 5), { title: 'other' })
  t.equal(await historyChartSvg(history, { title: 'run', bestEpoch: 3 }), a)
  t.notMatch(a, /\bzr\d+-/, 'no process-wide counter ids left')
})

t.test('loss only: no dev series, no legend', async t => {
  const svg = await historyChartSvg(history.map(({ epoch, loss }) => ({ epoch, loss })), { title: 'run', bestEpoch: 12 })
  t.equal(symbols(svg, 0).length, 12)
  t.notMatch(svg, 'dev accuracy')
  t.match(svg, 'best: epoch 12')
  t.notMatch(svg, 'best: epoch 12 (dev', 'no dev value to quote')
})

t.test('a single epoch and 100 epochs', async t => {
  const one = await historyChartSvg([{ epoch: 1, loss: 0.7, dev: 0.6 }], { title: 'one', bestEpoch: 1 })
  t.equal(symbols(one, 0).length, 1)
  t.equal(symbols(one, 1).length, 1)
  t.match(one, 'best: epoch 1 (dev 60.0 %)')
  const long = Array.from({ length: 100 }, (_, i) => ({ epoch: i + 1, loss: 1 / (i + 1), dev: 0.9 - 0.3 / (i + 1) }))
  const svg = await historyChartSvg(long, { title: 'long', bestEpoch: 73 })
  t.equal(symbols(svg, 0).length, 100, 'every epoch drawn, none thinned out')
  t.equal(symbols(svg, 1).length, 100)
  t.ok(parse(svg).balanced)
})

t.test('NaN, infinite and missing values are skipped, never thrown on', async t => {
  const odd: ChartEpoch[] = history.map(h => ({ ...h }))
  odd[2].loss = NaN
  odd[4].dev = Infinity
  odd[5].dev = undefined
  odd[7].epoch = NaN
  const svg = await historyChartSvg(odd, { title: 'odd', bestEpoch: NaN })
  t.equal(symbols(svg, 0).length, 10)
  t.equal(symbols(svg, 1).length, 9)
  t.notMatch(svg, 'NaN')
  t.notMatch(svg, 'best')
  for (const h of [[], [{ epoch: 1, loss: NaN, dev: NaN }]]) {
    const empty = await historyChartSvg(h, { title: 'empty', bestEpoch: 4 })
    t.ok(empty.startsWith('<svg') && parse(empty).balanced, 'an empty chart is still an SVG')
    t.notMatch(empty, 'NaN')
  }
})
