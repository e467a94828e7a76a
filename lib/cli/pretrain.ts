import { padBatch } from '../batch'
import { defaultModelDir, MaskedLM } from '../model'
import { runTraining } from '../train/loop'
import { randomMasking } from '../train/masking'
import { readJsonl } from '../data/jsonl'
import { toExamples } from '../data/examples'
import { floatFlag, intFlag, Output, parse, required } from './args'
import { defaultOutDir, loadFlags, loopFlags, loopOptions } from './common'
import { PetError } from '../errors'

export const usage = `pet pretrain --data FILE.jsonl [--model DIR] [--text-field text] [--limit N] [--mask-rate 0.15]
    [--epochs 1] [--lr 5e-5] [--batch-size 32] [--max-length 128] [--seed 42] [--out DIR] [--resume] [--json]
  Continued MLM pretraining on unlabeled in-domain text (BERT masking: 15% of the tokens, 80% [MASK] / 10%
  random / 10% kept); the result (out/best) is a model directory for zero-shot, train or finetune.`

export async function run (argv: string[]): Promise<void> {
  const a = parse(argv, {
    ...loopFlags, model: { type: 'string' }, data: { type: 'string' }, 'text-field': { type: 'string' }, limit: { type: 'string' },
    'mask-rate': { type: 'string' }, 'max-length': { type: 'string' }, device: { type: 'string' }, threads: { type: 'string' },
    out: { type: 'string' }, json: { type: 'boolean' }
  })
  if (a.help) { console.log(usage); return }
  const out = new Output(a.json === true)
  const file = required(a, 'data')
  const textField = (a['text-field'] as string | undefined) ?? 'text'
  let examples = toExamples(readJsonl(file), ['text'], file, { fields: { text: textField } })
  if (a.limit !== undefined) examples = examples.slice(0, intFlag(a, 'limit', 1))
  const rate = floatFlag(a, 'mask-rate', 0.15)
  if (!(rate > 0 && rate < 1)) throw new PetError('--mask-rate must be in (0, 1)', 'EINVAL')
  const maxLength = intFlag(a, 'max-length', 128, 3)
  const modelDir = (a.model as string | undefined) ?? defaultModelDir
  const load = loadFlags(a)
  const outDir = (a.out as string | undefined) ?? defaultOutDir('pretrain')
  const opts = loopOptions(a, outDir, { kind: 'all' }, { lr: 5e-5, epochs: 1, batchSize: 32 })

  const probe = await MaskedLM.load(modelDir, load)
  const tok = probe.tokenizer
  const limit = Math.min(maxLength, probe.maxPositions)
  const items = examples.map(e => [tok.clsId, ...tok.encode(e.fields.text).slice(0, limit - 2), tok.sepId])
  const special = new Set([tok.clsId, tok.sepId, tok.padId, tok.maskId, tok.unkId])
  const maskOpts = { rate, maskId: tok.maskId, vocabSize: probe.info.config.vocabSize, special }
  probe.dispose()

  const result = await runTraining(dir => MaskedLM.load(dir ?? modelDir, load), {
    items,
    buildStep (batchItems, rng) {
      const pos: number[] = []
      const tgt: number[] = []
      const rows = batchItems.map((ids, row) => {
        let m = randomMasking(ids, new Set(), rng, maskOpts)
        // every row predicts at least one token, so that short texts still count
        if (m.targets.length === 0 && ids.length > 2) m = { inputIds: ids.map((x, i) => i === 1 ? tok.maskId : x), targets: [[1, ids[1]]] }
        for (const [col, id] of m.targets) { pos.push(row, col); tgt.push(id) }
        return { inputIds: m.inputIds }
      })
      return { batch: padBatch(rows, tok.padId), loss: { vocabPositions: Int32Array.from(pos), vocabTargets: Int32Array.from(tgt) } }
    },
    describe () {}
  }, opts)
  result.model.dispose()
  const last = result.history[result.history.length - 1]
  const summary = { command: 'pretrain', texts: items.length, epochs: opts.epochs, lr: opts.lr, seed: opts.seed, final_mlm_loss: last?.loss ?? null, steps: result.steps, seconds: result.seconds, model: result.bestDir }
  out.line(`MLM loss ${last?.loss.toFixed(4)} after ${result.steps} steps (${result.seconds.toFixed(0)} s); model in ${result.bestDir}`)
  out.summary(summary)
}
