import { workflows } from '../options'
import { ipet } from '../index'
import { command, fmt } from './command'

export = command({
  name: 'ipet',
  workflow: workflows.ipet,
  about: `iPET: generation 0 trains one PET model per pattern; each later generation retrains every pattern on the
labeled set plus unlabeled examples labeled by a random share of the previous generation's other models,
the set growing by --scale-factor per generation and keeping the labels' proportions. Reports the final
generation's ensemble and writes its soft labels (for pet distill --soft-labels).`,
  run: ipet,
  print: (r, out) => out.line(`iPET final ensemble: dev accuracy ${fmt(r.devAccuracy)}, test accuracy ${fmt(r.testAccuracy)}; soft labels in ${r.softLabels}`)
})
