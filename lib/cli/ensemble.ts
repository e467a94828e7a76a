import { workflows } from '../options'
import { ensemble } from '../index'
import { command, fmt } from './command'

export = command({
  name: 'ensemble',
  workflow: workflows.ensemble,
  about: `Trains one PET model per pattern (or takes --models DIR,DIR,... already trained, in pattern order), combines
their label scores with weights — wmean (PET's default: each pattern's accuracy on the labeled set before
training) or uniform — reports the ensemble's dev/test accuracy and writes soft labels for --unlabeled
(soft-labels.jsonl in --out) for pet distill.`,
  run: ensemble,
  print: (r, out) => out.line(`ensemble of ${r.patterns.length}: dev accuracy ${fmt(r.devAccuracy)}, test accuracy ${fmt(r.testAccuracy)}` +
    (r.softLabels !== null ? `; soft labels in ${r.softLabels}` : ''))
})
