// Few-shot training of a causal LM (GPT-2) on a pattern: the answer is the continuation of what stands before the
// pattern's [MASK]. labelLoss 'vocab' (the seed's gpt.py, and P-tuning's): the LM loss over the whole sequence
// [CLS] + prefix + the label's word + the rest of the pattern. 'verbalizer' (PET's): cross-entropy over the labels'
// scores at the answer position (the prefix's last token), plus (1 - alpha) x the LM loss over the prefix.
// Unlabeled text (semi-supervised) adds its LM loss. Random masking is a masked LM's: a causal LM has none.
import { padBatch } from '../batch'
import type { Example } from '../data/examples'
import { PetError } from '../errors'
import type { ModelView } from '../model-folder'
import { nextTokenTargets } from '../train/lm-targets'
import { checkCausalOptions } from './lm-score'
import { scoringRule, stepLoss } from './label-scores'
import type { CausalInput, Pattern } from './pattern'
import type { PetLossOptions, PetStepBuilder } from './train'
import type { Verbalizer } from './verbalizer'

interface CausalItem { input: CausalInput, label: number }

/**
 * PET's training steps for a causal LM (petSteps picks it): the items and a builder of each batch and its loss, the
 * LM loss ('vocab') or the label loss at the answer position ('verbalizer'), plus unlabeled text's LM loss.
 */
export function causalSteps (model: ModelView, pattern: Pattern, verbalizer: Verbalizer, train: readonly Example[],
  unlabeled: readonly Example[], o: PetLossOptions): PetStepBuilder<CausalItem> {
  checkCausalOptions(o.labelScores)
  if (o.maskRate !== undefined && o.maskRate > 0) {
    throw new PetError(`maskRate ${o.maskRate}: random masking is a masked LM's; a causal LM trains on the LM loss (maskRate 0)`, 'EINVAL')
  }
  if (o.labelLoss === 'verbalizer' && verbalizer.lengths.some(n => n !== 1)) {
    throw new PetError("labelLoss 'verbalizer' with a causal LM scores one-token words at the answer position; " +
      `these words have ${verbalizer.lengths.join(', ')} tokens: use labelLoss 'vocab' (the LM loss over the sequence)`, 'EVERBALIZER')
  }
  const tok = model.tokenizer
  const limit = Math.min(o.maxLength, model.maxPositions)
  const answer = Math.max(...verbalizer.lengths)
  const items: CausalItem[] = train.map(e => {
    if (e.label === undefined) throw new PetError(`${e.source}: a training example has no label`, 'EDATA')
    try {
      return { input: pattern.encodeCausal(e.fields, tok, limit, answer), label: verbalizer.labelIndex(e.label) }
    } catch (err) {
      throw new PetError(`${e.source}: ${(err as Error).message}`, err instanceof PetError ? err.code : 'EDATA')
    }
  })
  const plain = unlabeled.map(e => [tok.clsId, ...tok.encode(Object.values(e.fields).join('')).slice(0, limit - 1)])
  const rule = scoringRule(verbalizer, o.labelScores)

  return {
    items,
    maskRate: 0,
    buildStep (batchItems, rng) {
      const rows: Array<{ inputIds: number[] }> = []
      const vocabPos: number[] = []
      const vocabTgt: number[] = []
      const labelPos: number[] = []
      const labelTgt: number[] = []
      for (const { input, label } of batchItems) {
        const row = rows.length
        if (o.labelLoss === 'vocab') {
          // the label's (first) word at the answer, the rest of the pattern after it
          const ids = [...input.prefix, ...verbalizer.words[label][0].ids, ...input.suffix]
          rows.push({ inputIds: ids })
          nextTokenTargets(row, ids, vocabPos, vocabTgt)
        } else {
          rows.push({ inputIds: input.prefix })
          labelPos.push(row, input.prefix.length - 1)
          labelTgt.push(label)
          if (o.alpha < 1) nextTokenTargets(row, input.prefix, vocabPos, vocabTgt)
        }
      }
      const extra = Math.round(batchItems.length * o.unlabeledRatio)
      for (let k = 0; k < extra && plain.length > 0; k++) {
        const ids = plain[rng.int(plain.length)]
        nextTokenTargets(rows.length, ids, vocabPos, vocabTgt)
        rows.push({ inputIds: ids })
      }
      const loss = stepLoss(rule, o.labelLoss, o.alpha, { positions: vocabPos, targets: vocabTgt },
        { positions: labelPos, targets: labelTgt })
      return { batch: padBatch(rows, tok.padId), loss }
    }
  }
}
