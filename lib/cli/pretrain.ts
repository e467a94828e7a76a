import { workflows } from '../options'
import { pretrain } from '../index'
import { command, fmt } from './command'

export = command({
  name: 'pretrain',
  workflow: workflows.pretrain,
  about: `Continued MLM pretraining on unlabeled in-domain text (BERT masking: 15% of the tokens, 80% [MASK] / 10%
random / 10% kept); the result (OUT/best) is a model directory for zero-shot, train or finetune.`,
  run: pretrain,
  print: (r, out) => out.line(`MLM loss ${fmt(r.finalMlmLoss)} after ${r.steps} steps (${r.seconds.toFixed(0)} s); model in ${r.model}`)
})
