// The clozes a pattern makes for a verbalizer. With one [MASK], a word of k tokens is read at k [MASK]s there,
// so there is one cloze — one encoder pass per example — per distinct word length (购物 at 2, 地图导航 at 4), not
// per label; a pattern with several [MASK]s is its own single cloze, for words of exactly that many tokens.
import { withTokenTypes } from '../batch'
import type { Example } from '../data/examples'
import { PetError } from '../errors'
import type { ModelView } from '../model-folder'
import type { EncodedInput, Pattern } from './pattern'
import type { Verbalizer } from './verbalizer'

/** [MASK]s per cloze, in the scoring rule's slot order (the verbalizer's word lengths, ascending). */
export function clozeLengths (pattern: Pattern, verbalizer: Verbalizer): readonly number[] {
  if (pattern.maskCount === 1 || (verbalizer.lengths.length === 1 && verbalizer.lengths[0] === pattern.maskCount)) return verbalizer.lengths
  throw new PetError(`the pattern '${pattern.source}' has ${pattern.maskCount} [MASK] but the verbalizer words have ` +
    `${verbalizer.lengths.join(' or ')} token(s): they must match, or give the pattern one [MASK] (each word then gets as many as it has tokens)`, 'EPATTERN')
}

/** encoded[g][i]: example i in cloze g. A cloze that leaves the text no room is an error naming its labels. */
export function encodeClozes (model: ModelView, pattern: Pattern, verbalizer: Verbalizer, examples: readonly Example[],
  maxLength: number): EncodedInput[][] {
  const limit = Math.min(maxLength, model.maxPositions)
  return clozeLengths(pattern, verbalizer).map(k => {
    const span = pattern.maskCount === 1 ? k : 1
    return examples.map(e => {
      try {
        return withTokenTypes(pattern.encode(e.fields, model.tokenizer, limit, span), model.config.typeVocabSize)
      } catch (err) {
        if (!(err instanceof PetError)) throw err
        if (err.code === 'EPATTERN' && span > 1) {
          const labels = verbalizer.labels.filter((_, l) => verbalizer.words[l].some(w => w.ids.length === k))
          throw new PetError(`the verbalizer words of ${k} tokens (label${labels.length > 1 ? 's' : ''} ${labels.map(l => `'${l}'`).join(', ')}) ` +
            `do not fit: ${err.message}`, 'EVERBALIZER')
        }
        throw new PetError(`${e.source}: ${err.message}`, err.code)
      }
    })
  })
}
