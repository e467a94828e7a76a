import { workflows } from '../options'
import { distill } from '../index'
import { command, fmt } from './command'

export = command({
  name: 'distill',
  workflow: workflows.distill,
  about: `Runs pet ensemble (its options below) to label --unlabeled softly — or reads --soft-labels FILE with --labels —
then trains a plain [CLS] classifier on those soft labels with the KL divergence at temperature T, scaled by
T^2 as in PET; reports its dev/test accuracy.`,
  run: distill,
  print: (r, out) => out.line(`distilled classifier, best epoch ${r.bestEpoch}: dev accuracy ${fmt(r.devAccuracy)}, test accuracy ${fmt(r.testAccuracy)}  (model in ${r.model})`)
})
