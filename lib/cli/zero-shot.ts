import { workflows } from '../options'
import { zeroShot } from '../index'
import { command } from './command'

export = command({
  name: 'zero-shot',
  workflow: workflows.zeroShot,
  about: `Scores every example with the off-the-shelf MLM and prints the accuracy over labeled lines.
--out writes one JSON line per example: index, label, gold, scores and probs per label.`,
  run: zeroShot,
  print: (r, out) => {
    if (r.accuracy !== null) out.line(`accuracy: ${r.accuracy.toFixed(4)} (${r.correct}/${r.n})  pattern: ${r.pattern}`)
    else out.line(`scored ${r.examples} unlabeled examples`)
    out.line(`${r.examples} examples in ${r.seconds.toFixed(1)} s (${r.sentencesPerS.toFixed(1)}/s)`)
  }
})
