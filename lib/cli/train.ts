import { workflows } from '../options'
import { train } from '../index'
import { command, fmt } from './command'

export = command({
  name: 'train',
  workflow: workflows.train,
  about: `Few-shot PET: fine-tunes the MLM on the labeled examples in the cloze, with extra random masking of the other
tokens; picks the epoch with the best dev accuracy (OUT/best); evaluates it on --test. With --unlabeled,
semi-supervised: the unlabeled text (no pattern) is MLM-masked and trained on in the same batches.`,
  run: train,
  print: (r, out) => out.line(`best epoch ${r.bestEpoch}: dev accuracy ${fmt(r.devAccuracy)}, test accuracy ${fmt(r.testAccuracy)}  (${r.seconds.toFixed(0)} s; model in ${r.model})`)
})
