import { workflows } from '../options'
import { finetune } from '../index'
import { command, fmt } from './command'

export = command({
  name: 'finetune',
  workflow: workflows.finetune,
  about: 'The baseline: a plain sequence classifier ([CLS] + linear head on the same encoder) trained on the labels.',
  run: finetune,
  print: (r, out) => out.line(`best epoch ${r.bestEpoch}: dev accuracy ${fmt(r.devAccuracy)}, test accuracy ${fmt(r.testAccuracy)}  (${r.seconds.toFixed(0)} s; model in ${r.model})`)
})
