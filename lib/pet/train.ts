// Few-shot PET: fine-tune the MLM on labeled examples in the cloze, with extra random masking of the other
// tokens as a regulariser; optionally semi-supervised (unlabeled text without the pattern, MLM-masked, in the
// same batches), in the seed's way.
import type { NativeLoss } from '../../bindings'
import { padBatch } from '../batch'
import type { Example } from '../data/examples'
import { PetError } from '../errors'
import type { ModelView } from '../model-folder'
import { randomMasking, type MaskingOptions } from '../train/masking'
import type { Rng } from '../train/rng'
import { scoringRule, stepLoss, type LabelScoreOptions } from './label-scores'
import type { EncodedInput, Pattern } from './pattern'
import { encodeClozes } from './cloze'
import { causalSteps } from './causal-train'
import type { Verbalizer } from './verbalizer'

/** PET's training loss: the label loss and its weight, random masking, unlabeled text per batch, scoring, length. */
export interface PetLossOptions {
  /**
   * 'vocab': the seed's loss — the label word's token is one more MLM target at the [MASK] (cross-entropy over the
   * whole vocabulary, averaged with the randomly masked tokens); 'verbalizer': PET's — cross-entropy over the
   * labels' scores, plus (1 - alpha) x the MLM loss of the masked tokens.
   */
  labelLoss: 'vocab' | 'verbalizer'
  alpha: number
  /** share of the other tokens randomly masked (0: none); unset: 0.15 with a masked LM, none with a causal LM */
  maskRate?: number
  /** unlabeled examples per labeled one in a batch (semi-supervised) */
  unlabeledRatio: number
  labelScores: LabelScoreOptions
  maxLength: number
}

/** a labeled example in each cloze (cloze.ts: one per distinct word length) */
interface Item { encs: EncodedInput[], label: number }

/** PET's steps as the loop takes them: the items to batch, a builder of each batch and its loss, the mask rate. */
export interface PetStepBuilder<I = unknown> {
  items: I[]
  buildStep (items: readonly I[], rng: Rng): { batch: ReturnType<typeof padBatch>, loss: NativeLoss }
  /** the share of tokens randomly masked in the steps (maskRate as settled for the model) */
  maskRate: number
}

/** The default share of randomly masked tokens of a masked LM's PET steps (the seed's). */
export const defaultMaskRate = 0.15

/** PET's training steps for the model: a masked LM's here, a causal LM's in causal-train.ts. */
export function petSteps (model: ModelView, pattern: Pattern, verbalizer: Verbalizer, train: readonly Example[],
  unlabeled: readonly Example[], o: PetLossOptions): PetStepBuilder {
  if (model.isCausal) return causalSteps(model, pattern, verbalizer, train, unlabeled, o) as PetStepBuilder
  return maskedSteps(model, pattern, verbalizer, train, unlabeled, { ...o, maskRate: o.maskRate ?? defaultMaskRate })
}

function maskedSteps (model: ModelView, pattern: Pattern, verbalizer: Verbalizer, train: readonly Example[],
  unlabeled: readonly Example[], o: PetLossOptions & { maskRate: number }): PetStepBuilder<Item> {
  const tok = model.tokenizer
  const items = labeledItems(model, pattern, verbalizer, train, o.maxLength)
  const limit = Math.min(o.maxLength, model.maxPositions)
  const step: MaskedStep = {
    o,
    verbalizer,
    padId: tok.padId,
    plain: unlabeled.map(e => {
      const text = Object.values(e.fields).join('')
      return [tok.clsId, ...tok.encode(text).slice(0, limit - 2), tok.sepId]
    }),
    maskOpts: { rate: o.maskRate, maskId: tok.maskId, vocabSize: model.config.vocabSize, special: new Set([tok.clsId, tok.sepId, tok.padId, tok.maskId, tok.unkId]) },
    // The training loss applies inference's scoring rule (iterative decoding is for scoring: one pass here).
    rule: scoringRule(verbalizer, o.labelScores)
  }
  return {
    items,
    maskRate: o.maskRate,
    buildStep: (batchItems, rng) => buildMaskedStep(step, batchItems, rng)
  }
}

/** Each labeled example in every cloze, with its label's index. */
function labeledItems (model: ModelView, pattern: Pattern, verbalizer: Verbalizer, train: readonly Example[], maxLength: number): Item[] {
  const clozes = encodeClozes(model, pattern, verbalizer, train, maxLength)
  return train.map((e, i) => {
    if (e.label === undefined) throw new PetError(`${e.source}: a training example has no label`, 'EDATA')
    try {
      return { encs: clozes.map(c => c[i]), label: verbalizer.labelIndex(e.label) }
    } catch (err) {
      throw new PetError(`${e.source}: ${(err as Error).message}`, 'EDATA')
    }
  })
}

/** What every masked-LM step of a run shares: the loss options, the scoring rule, the unlabeled rows, the masking. */
interface MaskedStep {
  o: PetLossOptions & { maskRate: number }
  verbalizer: Verbalizer
  rule: ReturnType<typeof scoringRule>
  padId: number
  /** the unlabeled examples' texts as plain rows ([CLS] text [SEP]), cut to the length */
  plain: number[][]
  maskOpts: MaskingOptions
}

/**
 * One step's batch and loss: a row per cloze the loss reads (the vocab loss: the label word's cloze; the verbalizer
 * loss: every cloze), the other tokens randomly masked as extra MLM targets, then unlabeled rows (unlabeledRatio per
 * labeled example), masked.
 */
function buildMaskedStep (step: MaskedStep, batchItems: readonly Item[], rng: Rng): { batch: ReturnType<typeof padBatch>, loss: NativeLoss } {
  const { o, verbalizer, rule, plain, maskOpts } = step
  const rows: Array<{ inputIds: number[], tokenTypeIds: number[] }> = []
  const vocabPos: number[] = []
  const vocabTgt: number[] = []
  const labelPos: number[] = []
  const labelTgt: number[] = []
  // One row per cloze the loss reads, the other tokens randomly masked as extra MLM targets.
  const addRow = (enc: EncodedInput): number => {
    const row = rows.length
    const m = o.maskRate > 0 ? randomMasking(enc.inputIds, new Set(enc.maskPositions), rng, maskOpts)
      : { inputIds: [...enc.inputIds], targets: [] }
    rows.push({ inputIds: m.inputIds, tokenTypeIds: enc.tokenTypeIds })
    for (const [col, id] of m.targets) { vocabPos.push(row, col); vocabTgt.push(id) }
    return row
  }
  for (const it of batchItems) {
    if (o.labelLoss === 'vocab') {
      // The label's (first) word, token by token, as MLM targets at the [MASK]s of its cloze.
      const word = verbalizer.words[it.label][0]
      const enc = it.encs[rule.clozes.indexOf(word.ids.length)]
      const row = addRow(enc)
      enc.maskPositions.forEach((col, s) => { vocabPos.push(row, col); vocabTgt.push(word.ids[s]) })
    } else {
      // Every cloze, its slots in the rule's order: the label scores are the rule's over all of them.
      for (const enc of it.encs) {
        const row = addRow(enc)
        for (const col of enc.maskPositions) labelPos.push(row, col)
      }
      labelTgt.push(it.label)
    }
  }
  const extra = Math.round(batchItems.length * o.unlabeledRatio)
  for (let k = 0; k < extra && plain.length > 0; k++) {
    const ids = plain[rng.int(plain.length)]
    const row = rows.length
    const m = randomMasking(ids, new Set(), rng, { ...maskOpts, rate: o.maskRate > 0 ? o.maskRate : defaultMaskRate })
    rows.push({ inputIds: m.inputIds, tokenTypeIds: new Array(ids.length).fill(0) })
    for (const [col, id] of m.targets) { vocabPos.push(row, col); vocabTgt.push(id) }
  }
  const batch = padBatch(rows, step.padId)
  const loss = stepLoss(rule, o.labelLoss, o.alpha, { positions: vocabPos, targets: vocabTgt },
    { positions: labelPos, targets: labelTgt })
  return { batch, loss }
}
