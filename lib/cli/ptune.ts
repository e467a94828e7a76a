import { workflows } from '../options'
import { ptune } from '../index'
import { command, fmt } from './command'

export = command({
  name: 'ptune',
  workflow: workflows.ptune,
  about: `P-tuning: the pattern is made of never-used [unusedN] tokens around the [MASK] (around: 4 + [MASK] + 4 after
[CLS], as in the seed). frozen (few labels): the model is frozen and only the prompt's embedding rows learn
(a gradient-masked embedding update; the optimizer holds state for those rows only) — or, with --encoder, a
bidirectional LSTM + MLP (or an MLP) that produces them, at --prompt-lr; full (many labels): every weight trains
with the same template. The learned prompt is saved as a PEFT-style adapter (OUT/best/adapter:
adapter_config.json + adapter_model.safetensors) that pet predict --model BASE --prompt OUT/best/adapter plugs
onto the unchanged base model; frozen checkpoints (best/, and last/ for --resume) hold only the adapter.
Verbalizer words may be [unusedN] tokens themselves (learned targets; trained with the prompt rows).
Defaults that depend on the mode: frozen --lr 3e-3 (the rows; the seed's 6e-4 is too slow for 30 short
epochs) and --weight-decay 0, full --lr 1e-4 and 0.01; --mask-rate 0, or 0.15 with --aux-mlm-weight.`,
  run: ptune,
  print: (r, out) => out.line(`best epoch ${r.bestEpoch}: dev accuracy ${fmt(r.devAccuracy)}, test accuracy ${fmt(r.testAccuracy)}` +
    (r.adapter !== null ? `; adapter in ${r.adapter}` : `; model in ${r.model}`))
})
