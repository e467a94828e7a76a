// Scoring with a causal LM (GPT-2): the pattern's [MASK] marks where the answer goes, and a label's score is the
// log-probability of its word as the continuation of what stands before it — optionally plus that of the rest of
// the pattern after the word ('word+suffix', the seed's "很满意。" form). Each example is one sequence: its prefix
// once, then every word (with the suffix) as a branch that sees the prefix and itself only, at the positions that
// follow the prefix (branchIds, positionIds). So k words cost one pass over prefix + their tokens, not k passes
// over the prefix; the LM head runs at the prefix's last token and inside the branches only.
import type { NativeBatch } from '../../bindings'
import { PetError } from '../errors'
import type { MaskedLM } from '../model'
import { combineLabelWords, perTokenMean, type LabelScoreOptions, type ScoringRule } from './label-scores'
import type { CausalInput } from './pattern'
import type { Verbalizer } from './verbalizer'

/** The branches of one example: every verbalizer word (label by label), each followed by the suffix where asked. */
interface Layout {
  ids: number[]
  branch: number[]
  position: number[]
  /** distinct positions the head reads, and the tokens scored at each */
  reads: Array<{ column: number, tokens: number[] }>
  /** per word: (read, token index in that read) of each of its tokens, and of its suffix tokens */
  word: Array<Array<[number, number]>>
  suffix: Array<Array<[number, number]>>
}

/** The most candidates one row of a causal scoring call holds (see causalScores). */
const readWidth = 8

function layout (e: CausalInput, words: ReadonlyArray<readonly number[]>, withSuffix: boolean): Layout {
  const ids = [...e.prefix]
  const branch = e.prefix.map(() => 0)
  const position = e.prefix.map((_, i) => i)
  const reads: Layout['reads'] = []
  const readAt = new Map<number, number>()
  // The head at `column` scores `token`: one read per distinct column, its tokens deduplicated.
  const score = (column: number, token: number): [number, number] => {
    let r = readAt.get(column)
    if (r === undefined) { r = reads.length; readAt.set(column, r); reads.push({ column, tokens: [] }) }
    let k = reads[r].tokens.indexOf(token)
    if (k < 0) { k = reads[r].tokens.length; reads[r].tokens.push(token) }
    return [r, k]
  }
  const word: Layout['word'] = []
  const suffix: Layout['suffix'] = []
  words.forEach((w, j) => {
    const tokens = withSuffix ? [...w, ...e.suffix] : [...w]
    let before = e.prefix.length - 1 // the token whose logits predict the next one
    const scored: Array<[number, number]> = []
    tokens.forEach((t, k) => {
      scored.push(score(before, t))
      before = ids.length
      ids.push(t)
      branch.push(j + 1)
      position.push(e.prefix.length + k)
    })
    word.push(scored.slice(0, w.length))
    suffix.push(scored.slice(w.length))
  })
  return { ids, branch, position, reads, word, suffix }
}

/** Right-padded batch of the layouts, with their branches and positions. */
function branchBatch (items: readonly Layout[], padId: number): NativeBatch {
  const batchSize = items.length
  const seqLen = Math.max(...items.map(l => l.ids.length))
  const inputIds = new Int32Array(batchSize * seqLen).fill(padId)
  const attentionMask = new Int32Array(batchSize * seqLen)
  const positionIds = new Int32Array(batchSize * seqLen)
  const branchIds = new Int32Array(batchSize * seqLen)
  items.forEach((l, b) => {
    const base = b * seqLen
    inputIds.set(l.ids, base)
    attentionMask.fill(1, base, base + l.ids.length)
    positionIds.set(l.position, base)
    branchIds.set(l.branch, base)
  })
  return { inputIds, attentionMask, positionIds, branchIds, batchSize, seqLen }
}

/** A causal LM's log-probability rule for the verbalizer's words: 'iterative' decoding is a masked LM's. */
export function checkCausalOptions (o: LabelScoreOptions): void {
  if (o.multiToken === 'iterative') {
    throw new PetError("multiToken 'iterative' decodes a masked LM's [MASK]s; a causal LM reads a word left to right ('auto', 'sum' or 'mean')", 'EINVAL')
  }
}

/**
 * Label scores of each example (in order) from a causal LM: per word the sum of its tokens' log-probabilities
 * (their mean where multiToken is 'mean', or 'auto' with words of different lengths), plus the suffix's summed
 * log-probability after the word with 'word+suffix'; a label's words combine by the rule (mean or log-sum-exp).
 */
export async function causalScores (model: MaskedLM, verbalizer: Verbalizer, rule: ScoringRule, o: LabelScoreOptions,
  items: readonly CausalInput[]): Promise<number[][]> {
  checkCausalOptions(o)
  const words = verbalizer.words.flatMap(ws => ws.map(w => w.ids))
  const lengths = new Set(words.map(w => w.length))
  const perToken = perTokenMean(o, lengths.size)
  const layouts = items.map(e => layout(e, words, o.continuation === 'word+suffix'))
  // One [M, C] candidate list over all reads of the batch, C the most tokens any read scores but at most
  // readWidth: a read with more (the prefix's last token, where every word's first token is scored) takes several
  // rows of C, shorter lists are padded with their first token. Without the cap every read of a batch was padded to
  // that one read's width (120 labels: ~100 candidates at each of ~300 reads an example, a [M, C, hidden] gather of
  // about a GB a batch).
  const C = Math.min(readWidth, Math.max(...layouts.flatMap(l => l.reads.map(r => r.tokens.length))))
  const positions: number[] = []
  const candidates: number[] = []
  const rowOf: number[][] = [] // per example, per read: its first row
  layouts.forEach((l, b) => {
    rowOf.push(l.reads.map(r => {
      const row = positions.length / 2
      for (let first = 0; first < r.tokens.length; first += C) {
        positions.push(b, r.column)
        for (let k = first; k < first + C; k++) candidates.push(r.tokens[k] ?? r.tokens[first])
      }
      return row
    }))
  })
  const res = await model.scoreCandidates(branchBatch(layouts, model.tokenizer.padId), Int32Array.from(positions), candidates, C)
  return layouts.map((l, b) => {
    const logp = ([r, k]: [number, number]): number => {
      const m = rowOf[b][r] + Math.floor(k / C)
      return res.logits[m * C + (k % C)] - res.logZ[m]
    }
    const scores = l.word.map((tokens, w) => {
      let s = tokens.reduce((a, t) => a + logp(t), 0)
      if (perToken) s /= tokens.length
      return s + l.suffix[w].reduce((a, t) => a + logp(t), 0)
    })
    return combineLabelWords(rule, scores)
  })
}
