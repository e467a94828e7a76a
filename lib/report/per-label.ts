// Accuracy per label and the most confused pairs: what a report needs to stay readable with a hundred labels.
import type { Example } from '../data/examples'
import type { Prediction } from '../pet/score'

/** One label's accuracy: of n examples with that gold label, how many were predicted right (null without examples). */
export interface LabelAccuracy { label: string, n: number, correct: number, accuracy: number | null }
/** A gold label predicted as another, and how often. */
export interface ConfusedPair { gold: string, predicted: string, count: number }
/** The accuracy per label and the most confused pairs on one split: what a report needs with a hundred labels. */
export interface LabelBreakdown {
  /** which split the predictions are of ('test' or 'dev') */
  split: string
  perLabel: LabelAccuracy[]
  /** gold -> predicted pairs, most frequent first (at most `top`) */
  confusedPairs: ConfusedPair[]
}

/**
 * The breakdown of `predictions` against the examples' gold labels (examples without one, or with a label not in
 * `labels`, are left out); at most `top` confused pairs.
 */
export function labelBreakdown (split: string, labels: readonly string[], examples: readonly Example[],
  predictions: readonly Prediction[], top = 10): LabelBreakdown {
  const n = new Map(labels.map(l => [l, 0]))
  const correct = new Map(labels.map(l => [l, 0]))
  const pairs = new Map<string, ConfusedPair>()
  examples.forEach((e, i) => {
    if (e.label === undefined || !n.has(e.label)) return
    n.set(e.label, n.get(e.label)! + 1)
    const p = predictions[i].label
    if (p === e.label) { correct.set(e.label, correct.get(e.label)! + 1); return }
    const key = `${e.label}\u0000${p}`
    const pair = pairs.get(key) ?? { gold: e.label, predicted: p, count: 0 }
    pair.count++
    pairs.set(key, pair)
  })
  return {
    split,
    perLabel: labels.map(label => ({ label, n: n.get(label)!, correct: correct.get(label)!, accuracy: n.get(label)! > 0 ? correct.get(label)! / n.get(label)! : null })),
    confusedPairs: [...pairs.values()].sort((a, b) => b.count - a.count || a.gold.localeCompare(b.gold) || a.predicted.localeCompare(b.predicted)).slice(0, top)
  }
}

/** A breakdown as report.md's two tables (per label, most confused pairs), as lines. */
export function breakdownMarkdown (b: LabelBreakdown): string[] {
  const pct = (x: number | null) => x === null ? '—' : `${(100 * x).toFixed(1)} %`
  return [
    `## Accuracy per label (${b.split})`, '', '| label | examples | correct | accuracy |', '|---|---:|---:|---:|',
    ...b.perLabel.map(l => `| ${l.label} | ${l.n} | ${l.correct} | ${pct(l.accuracy)} |`),
    '', `## Most confused pairs (${b.split})`, '', '| gold | predicted | count |', '|---|---|---:|',
    ...(b.confusedPairs.length > 0 ? b.confusedPairs.map(p => `| ${p.gold} | ${p.predicted} | ${p.count} |`) : ['| — | — | 0 |'])
  ]
}
