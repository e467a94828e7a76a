// The PET flags shared by pet train, ensemble, distill and ipet.
import { toExamples, type Example } from '../data/examples'
import { readJsonl } from '../data/jsonl'
import { PetError } from '../errors'
import { defaultLabelScoreOptions } from '../pet/label-scores'
import type { PetLossOptions } from '../pet/train'
import type { VerbalizerSpec } from '../pet/verbalizer'
import { choice, floatFlag, intFlag, type Options } from './args'

export const petFlags: Options = {
  verbalizer: { type: 'string' },
  'mask-rate': { type: 'string' },
  'label-loss': { type: 'string' },
  alpha: { type: 'string' },
  unlabeled: { type: 'string' },
  'unlabeled-ratio': { type: 'string' },
  'many-to-one': { type: 'string' },
  'multi-token': { type: 'string' }
}

export const petUsage = `  pet:   --verbalizer '{"positive":["很"],"negative":["不"]}' [--mask-rate 0.15] [--label-loss vocab|verbalizer]
         [--alpha 0.9999 (verbalizer-loss weight; MLM gets 1 - alpha)] [--unlabeled FILE] [--unlabeled-ratio 1]
         [--many-to-one mean|logsumexp] [--multi-token sum|mean|iterative]`

type Values = Record<string, string | boolean | undefined>

export function petLossFromFlags (a: Values): PetLossOptions {
  const o: PetLossOptions = {
    labelLoss: choice(a, 'label-loss', ['vocab', 'verbalizer'] as const, 'vocab'),
    alpha: floatFlag(a, 'alpha', 0.9999),
    maskRate: floatFlag(a, 'mask-rate', 0.15),
    unlabeledRatio: floatFlag(a, 'unlabeled-ratio', 1),
    labelScores: {
      ...defaultLabelScoreOptions,
      manyToOne: choice(a, 'many-to-one', ['mean', 'logsumexp'] as const, 'mean'),
      multiToken: choice(a, 'multi-token', ['sum', 'mean', 'iterative'] as const, 'sum')
    },
    maxLength: intFlag(a, 'max-length', 128, 3)
  }
  if (o.maskRate < 0 || o.maskRate >= 1) throw new PetError('--mask-rate must be in [0, 1)', 'EINVAL')
  if (o.alpha <= 0 || o.alpha > 1) throw new PetError('--alpha must be in (0, 1]', 'EINVAL')
  if (o.unlabeledRatio < 0) throw new PetError('--unlabeled-ratio must be >= 0', 'EINVAL')
  return o
}

export function verbalizerSpec (json: string): VerbalizerSpec {
  try {
    return JSON.parse(json) as VerbalizerSpec
  } catch (err) {
    throw new PetError(`the verbalizer is not valid JSON (${(err as Error).message})`, 'EVERBALIZER')
  }
}

/** --unlabeled FILE with the pattern's fields (labels, if any, are ignored). */
export function readUnlabeled (a: Values, fields: readonly string[]): Example[] {
  if (!a.unlabeled) return []
  const textField = (a['text-field'] as string | undefined) ?? 'text'
  return toExamples(readJsonl(a.unlabeled as string), fields, a.unlabeled as string,
    { fields: fields.length === 1 && textField !== 'text' ? { [fields[0]]: textField } : undefined })
}
