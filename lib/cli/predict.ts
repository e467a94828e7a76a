import { workflows } from '../options'
import { predict } from '../index'
import { command } from './command'

export = command({
  name: 'predict',
  workflow: workflows.predict,
  about: `Predicts with a model trained by pet train / finetune / distill / ptune (a run directory or its best/), or
with a P-tuning adapter (--prompt, written by pet ptune) on its unchanged base model (--model). Prints the
accuracy when the lines carry labels, and one JSON line per example (index, label, probs) unless --out or --json.`,
  run: predict,
  print: (r, out) => {
    if (r.accuracy !== null) out.line(`accuracy: ${r.accuracy.toFixed(4)} (${r.n} labeled)`)
    if (r.out === null) for (const [i, p] of r.predictions.entries()) out.line(JSON.stringify({ index: i, label: p.label, probs: p.probs }))
  }
})
