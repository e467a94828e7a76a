// pretrain(): continued pretraining on unlabeled in-domain text, as a library call: a masked LM's MLM objective
// (tokens masked at maskRate, BERT's 80/10/10), or a causal LM's LM objective (every token from those before it).
import { padBatch } from '../batch'
import { fieldMap, loadExamples, type DataInput } from '../data/examples'
import { PetError } from '../errors'
import { MaskedLM } from '../model'
import { ModelFolder } from '../model-folder'
import type { Control } from '../progress'
import { workflows } from '../options'
import { runTraining, type EpochRecord } from '../train/loop'
import { randomMasking } from '../train/masking'
import { nextTokenTargets } from '../train/lm-targets'
import { defaultMaskRate } from '../pet/train'
import { workflowOptions } from '../validate'
import { loadOptionsOf, loopOptions, modelDirOf, runDir, type ModelOptions, type Settled, type TrainingOptions, onWorkers, withModelFolder } from './common'

/** The options of pretrain: the model, the unlabeled texts, the masking rate and the training loop. */
export interface PretrainOptions extends ModelOptions, TrainingOptions, Control {
  /** the unlabeled texts (JSONL path or records) */
  data: DataInput
  textField?: string
  /** use only the first N texts */
  limit?: number
  /** a masked LM's share of the tokens masked (default 0.15; 80 % [MASK], 10 % random, 10 % kept); a causal LM has none */
  maskRate?: number
  maxLength?: number
  out?: string
}

/** What pretrain returns: the objective, the last epoch's loss, the settings and the pretrained model's directory. */
export interface PretrainResult {
  command: 'pretrain'
  texts: number
  epochs: number
  lr: number
  seed: number
  finalMlmLoss: number | null
  steps: number
  seconds: number
  out: string
  /** 'mlm' (a masked LM) or 'lm' (a causal LM: finalMlmLoss is then the LM loss) */
  objective: 'mlm' | 'lm'
  /** the pretrained model directory (out/best), for zero-shot, train or finetune */
  model: string
  history: EpochRecord[]
}

/**
 * Continued pretraining on unlabeled in-domain text, before zero-shot, train or finetune: a masked LM learns by MLM
 * (tokens masked at maskRate), a causal LM by next-token prediction; the model is saved in out/best.
 */
export async function pretrain (options: PretrainOptions): Promise<PretrainResult> {
  const o = await withModelFolder(workflowOptions<Settled<PretrainOptions>>(workflows.pretrain, options))
  const onWorkersResult = await onWorkers<PretrainResult>('pretrain', options, o)
  if (onWorkersResult !== undefined) return onWorkersResult
  let examples = loadExamples(o.data, ['text'], { ...fieldMap(['text'], o), labelField: undefined }, 'data')
  if (o.limit !== undefined) examples = examples.slice(0, o.limit)
  const modelDir = modelDirOf(o)
  const load = loadOptionsOf(o)
  const out = runDir(o, 'pretrain')
  const folder = ModelFolder.read(modelDir)
  const tok = folder.tokenizer
  const causal = folder.isCausal
  const limit = Math.min(o.maxLength, folder.maxPositions)
  const vocabSize = folder.config.vocabSize
  if (causal && o.maskRate !== undefined) throw new PetError(`maskRate ${o.maskRate}: a causal LM pretrains on the LM objective, with no masking`, 'EINVAL')
  const rate = o.maskRate ?? defaultMaskRate
  if (!causal && !(rate > 0)) throw new PetError('maskRate must be > 0 for MLM pretraining', 'EINVAL')
  // [CLS] text [SEP] for a masked LM; [CLS] text for a causal LM (as uer/gpt2-chinese's texts start)
  const items = examples.map(e => causal ? [tok.clsId, ...tok.encode(e.fields.text).slice(0, limit - 1)]
    : [tok.clsId, ...tok.encode(e.fields.text).slice(0, limit - 2), tok.sepId])
  const special = new Set([tok.clsId, tok.sepId, tok.padId, tok.maskId, tok.unkId])
  const maskOpts = { rate, maskId: tok.maskId, vocabSize, special }

  const r = await runTraining(dir => MaskedLM.load(dir ?? modelDir, load), {
    items,
    buildStep (batchItems, rng) {
      const pos: number[] = []
      const tgt: number[] = []
      const rows = batchItems.map((ids, row) => {
        if (causal) {
          nextTokenTargets(row, ids, pos, tgt)
          return { inputIds: ids }
        }
        let m = randomMasking(ids, new Set(), rng, maskOpts)
        // every row predicts at least one token, so that short texts still count
        if (m.targets.length === 0 && ids.length > 2) m = { inputIds: ids.map((x, i) => i === 1 ? tok.maskId : x), targets: [[1, ids[1]]] }
        for (const [col, id] of m.targets) { pos.push(row, col); tgt.push(id) }
        return { inputIds: m.inputIds }
      })
      return { batch: padBatch(rows, tok.padId), loss: { vocabPositions: Int32Array.from(pos), vocabTargets: Int32Array.from(tgt) } }
    },
    describe () {}
  }, loopOptions(o, out, { kind: 'all' }))
  const last = r.history[r.history.length - 1]
  return {
    command: 'pretrain', objective: causal ? 'lm' : 'mlm', texts: items.length, epochs: o.epochs, lr: o.lr, seed: o.seed, finalMlmLoss: last?.loss ?? null,
    steps: r.steps, seconds: r.seconds, out, model: r.bestDir, history: r.history
  }
}
