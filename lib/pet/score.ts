// Scoring examples in a cloze: encode with the pattern, batch by length, read the verbalizer candidates at
// the [MASK] slots, and turn them into label scores. Used by zero-shot, evaluation and pseudo-labelling.
import type { NativeCandidateScores } from '../../bindings'
import { lengthBuckets, maskPositionPairs, padBatch, withTokenTypes } from '../batch'
import type { Example } from '../data/examples'
import { PetError } from '../errors'
import type { MaskedLM } from '../model'
import type { ModelView } from '../model-folder'
import { throwIfAborted, type Control } from '../progress'
import { optionTable } from '../options'
import * as v from '../validate'
import { applyRule, argmax, combineLabelWords, defaultLabelScoreOptions, manyToOneRules, multiTokenRules, scoringRule, softmax, type LabelScoreOptions, type ScoringRule } from './label-scores'
import { Pattern, type CausalInput, type EncodedInput } from './pattern'
import { Verbalizer } from './verbalizer'
import { clozeLengths, encodeClozes } from './cloze'
import { causalScores, checkCausalOptions } from './lm-score'

/**
 * The options of scoreExamples: batch size, length cap, the label-scoring rule, sharding, cancellation and progress.
 */
export interface ScoreOptions extends Control {
  batchSize: number
  maxLength: number
  labelScores: LabelScoreOptions
  /** sharded scoring in a distributed run: this rank scores every worldSize-th batch, the scores are summed over ranks */
  shard?: ScoreShard
}

/** What sharded scoring needs of a process group (lib/distributed/group.ts). */
export interface ScoreShard {
  rank: number
  worldSize: number
  allReduceSum: (values: Float64Array) => Promise<Float64Array>
}

/** scoreExamples' defaults: batches of 32, inputs cut to 128 tokens, PET's label scoring. */
export const defaultScoreOptions: ScoreOptions = { batchSize: 32, maxLength: 128, labelScores: defaultLabelScoreOptions }

function scoreOptions (options: unknown): ScoreOptions {
  return v.options<ScoreOptions>(options, 'score options', defaultScoreOptions, {
    batchSize: (x, n) => v.optionValue(optionTable.batchSize, x, n) as number,
    maxLength: (x, n) => v.optionValue(optionTable.maxLength, x, n) as number,
    labelScores: (x, n) => v.options<LabelScoreOptions>(x, n, defaultLabelScoreOptions, {
      manyToOne: (y, m) => v.oneOf(y, m, manyToOneRules),
      multiToken: (y, m) => v.oneOf(y, m, multiTokenRules),
      score: (y, m) => v.oneOf(y, m, ['logit', 'logprob'] as const),
      continuation: (y, m) => v.optionValue(optionTable.continuation, y, m) as LabelScoreOptions['continuation']
    }),
    shard: (x, n) => {
      if (!v.isPlainObject(x) || typeof x.allReduceSum !== 'function') throw v.invalid('process group (rank, worldSize, allReduceSum)', n, x)
      return x as unknown as ScoreShard
    },
    signal: (x, n) => v.optionValue(optionTable.signal, x, n) as AbortSignal,
    onProgress: (x, n) => v.optionValue(optionTable.onProgress, x, n) as ScoreOptions['onProgress']
  })
}

/** One example's prediction: the top label, a score per verbalizer label and their softmax. */
export interface Prediction {
  label: string
  /** one score per verbalizer label */
  scores: number[]
  /** softmax of the scores */
  probs: number[]
}

/** The pattern can hold the verbalizer's words (see cloze.ts); an EPATTERN PetError says why not. */
export function checkPatternVerbalizer (pattern: Pattern, verbalizer: Verbalizer): void {
  clozeLengths(pattern, verbalizer)
}

/** The examples in the pattern as it is (its own [MASK]s). */
export function encodeExamples (model: MaskedLM, pattern: Pattern, examples: readonly Example[], maxLength: number): EncodedInput[] {
  const limit = Math.min(maxLength, model.maxPositions)
  return examples.map(e => {
    try {
      return withTokenTypes(pattern.encode(e.fields, model.tokenizer, limit), model.config.typeVocabSize)
    } catch (err) {
      if (err instanceof PetError) throw new PetError(`${e.source}: ${err.message}`, err.code)
      throw err
    }
  })
}

/** A causal LM's inputs: each example's prefix (up to the [MASK]) and suffix, with room for the longest word. */
export function encodeCausalExamples (model: ModelView, pattern: Pattern, verbalizer: Verbalizer, examples: readonly Example[],
  maxLength: number): CausalInput[] {
  const limit = Math.min(maxLength, model.maxPositions)
  const answer = Math.max(...verbalizer.lengths)
  return examples.map(e => {
    try {
      return pattern.encodeCausal(e.fields, model.tokenizer, limit, answer)
    } catch (err) {
      if (err instanceof PetError) throw new PetError(`${e.source}: ${err.message}`, err.code)
      throw err
    }
  })
}

/**
 * Label scores of every example in the cloze, in the examples' order: one encoder pass per batch and per
 * distinct word length (cloze.ts), the MLM head only at the [MASK]s and only for the candidate tokens. Options
 * are checked (a PetError EINVAL names a bad one); `signal` stops it between batches (PetError EABORT);
 * `onProgress` gets 'score' events.
 */
export async function scoreExamples (model: MaskedLM, pattern: Pattern, verbalizer: Verbalizer,
  examples: readonly Example[], options: Partial<ScoreOptions> = {}): Promise<Prediction[]> {
  const opts = scoreOptions(options)
  if (!(pattern instanceof Pattern)) throw v.invalid('Pattern', 'pattern', pattern)
  if (!(verbalizer instanceof Verbalizer)) throw v.invalid('Verbalizer', 'verbalizer', verbalizer)
  if (!Array.isArray(examples)) throw v.invalid('array of examples', 'examples', examples)
  if (model.isCausal) return await scoreCausal(model, pattern, verbalizer, examples, opts)
  const encoded = encodeClozes(model, pattern, verbalizer, examples, opts.maxLength)
  const rule = scoringRule(verbalizer, opts.labelScores)
  const out: Prediction[] = new Array(examples.length)
  let done = 0
  const shard = opts.shard
  // every cloze of an example is its base length plus a few [MASK]s: one bucketing serves them all
  const buckets = lengthBuckets(encoded[0].map(e => e.inputIds.length), opts.batchSize)
  for (let k = 0; k < buckets.length; k++) {
    // Sharded: whole batches, round robin, so every example is scored in the same batch as by one process.
    if (shard !== undefined && k % shard.worldSize !== shard.rank) continue
    const bucket = buckets[k]
    throwIfAborted(opts.signal, 'scoring')
    const items = encoded.map(cloze => bucket.map(i => cloze[i]))
    const scored = rule.slots > 1 && opts.labelScores.multiToken === 'iterative'
      ? await iterativeScores(model, verbalizer, rule, items)
      : await clozeScores(model, rule, items)
    bucket.forEach((index, b) => {
      const scores = scored[b]
      out[index] = { label: verbalizer.labels[argmax(scores)], scores, probs: softmax(scores) }
    })
    done += bucket.length
    opts.onProgress?.({ kind: 'score', done, total: examples.length })
  }
  return await mergeShards(shard, verbalizer, out)
}

/** Sharded scoring: every rank ends with all the scores. Each rank's in its rows, zeros elsewhere; the sum (fp64, adding exact zeros) is every score, bit for bit. */
async function mergeShards (shard: ScoreShard | undefined, verbalizer: Verbalizer, out: Prediction[]): Promise<Prediction[]> {
  if (shard === undefined) return out
  const L = verbalizer.labels.length
  const mine = new Float64Array(out.length * L)
  out.forEach((p, i) => { mine.set(p.scores, i * L) })
  const all = await shard.allReduceSum(mine)
  for (let i = 0; i < out.length; i++) {
    const scores = Array.from(all.subarray(i * L, (i + 1) * L))
    out[i] = { label: verbalizer.labels[argmax(scores)], scores, probs: softmax(scores) }
  }
  return out
}

/** The causal LM's scoring (lm-score.ts): prefixes batched by length, every word a branch of its example's pass. */
async function scoreCausal (model: MaskedLM, pattern: Pattern, verbalizer: Verbalizer, examples: readonly Example[],
  opts: ScoreOptions): Promise<Prediction[]> {
  checkCausalOptions(opts.labelScores)
  const encoded = encodeCausalExamples(model, pattern, verbalizer, examples, opts.maxLength)
  const rule = scoringRule(verbalizer, opts.labelScores)
  const out: Prediction[] = new Array(examples.length)
  let done = 0
  const buckets = lengthBuckets(encoded.map(e => e.prefix.length), opts.batchSize)
  for (let k = 0; k < buckets.length; k++) {
    if (opts.shard !== undefined && k % opts.shard.worldSize !== opts.shard.rank) continue
    throwIfAborted(opts.signal, 'scoring')
    const bucket = buckets[k]
    const scored = await causalScores(model, verbalizer, rule, opts.labelScores, bucket.map(i => encoded[i]))
    bucket.forEach((index, b) => {
      out[index] = { label: verbalizer.labels[argmax(scored[b])], scores: scored[b], probs: softmax(scored[b]) }
    })
    done += bucket.length
    opts.onProgress?.({ kind: 'score', done, total: examples.length })
  }
  return await mergeShards(opts.shard, verbalizer, out)
}

/** One pass per cloze; each example's slots gathered in the rule's order and scored by it. items[g][b]. */
async function clozeScores (model: MaskedLM, rule: ScoringRule, items: ReadonlyArray<readonly EncodedInput[]>): Promise<number[][]> {
  const C = rule.candidates.length
  const passes: NativeCandidateScores[] = []
  for (const cloze of items) passes.push(await model.scoreCandidates(padBatch(cloze, model.tokenizer.padId), maskPositionPairs(cloze), rule.candidates))
  return items[0].map((_, b) => {
    if (passes.length === 1) {
      const S = rule.slots
      return applyRule(rule, passes[0].logits.subarray(b * S * C, (b + 1) * S * C), passes[0].logZ.subarray(b * S, (b + 1) * S))
    }
    const logits = new Float32Array(rule.slots * C)
    const logZ = new Float32Array(rule.slots)
    let offset = 0
    passes.forEach((r, g) => {
      const k = rule.clozes[g]
      logits.set(r.logits.subarray(b * k * C, (b + 1) * k * C), offset * C)
      logZ.set(r.logZ.subarray(b * k, (b + 1) * k), offset)
      offset += k
    })
    return applyRule(rule, logits, logZ)
  })
}

/**
 * PET's decoding for multi-token words: all of a word's slots masked (in its cloze); each pass scores the word's
 * token at every slot still masked, fills the most confident one with its token and adds its log-probability;
 * k passes for a word of k tokens. Several words of a label combine by the rule (mean or log-sum-exp).
 */
async function iterativeScores (model: MaskedLM, v: Verbalizer, rule: ScoringRule, clozes: ReadonlyArray<readonly EncodedInput[]>): Promise<number[][]> {
  const C = v.candidates.length
  // [examples][words], words in the rule's order (label by label)
  const perWord: number[][] = clozes[0].map(() => [])
  for (const words of v.words) {
    for (const w of words) {
      const S = w.ids.length
      const items = clozes[rule.clozes.indexOf(S)]
      const ids = items.map(e => [...e.inputIds])
      const open = items.map(() => new Set(Array.from({ length: S }, (_, s) => s)))
      const total = new Array(items.length).fill(0)
      for (let pass = 0; pass < S; pass++) {
        const batch = padBatch(items.map((e, b) => ({ inputIds: ids[b], tokenTypeIds: e.tokenTypeIds })), model.tokenizer.padId)
        const r = await model.scoreCandidates(batch, maskPositionPairs(items), v.candidates)
        items.forEach((e, b) => {
          let best = -1
          let bestLp = -Infinity
          for (const s of open[b]) {
            const lp = r.logits[(b * S + s) * C + v.candidateIndex.get(w.ids[s])!] - r.logZ[b * S + s]
            if (lp > bestLp) { bestLp = lp; best = s }
          }
          total[b] += bestLp
          open[b].delete(best)
          ids[b][e.maskPositions[best]] = w.ids[best]
        })
      }
      items.forEach((_, b) => perWord[b].push(total[b]))
    }
  }
  return perWord.map(ws => combineLabelWords(rule, ws))
}

/** An accuracy with its counts: correct of n labeled examples. */
export interface Evaluation {
  accuracy: number
  /** labeled examples counted */
  n: number
  correct: number
}

/** Accuracy over the labeled examples; a label outside `labels` (e.g. the verbalizer's) is an error. */
export function accuracy (examples: readonly Example[], predictions: readonly Prediction[],
  labels: readonly string[] | Verbalizer): Evaluation {
  const known = Array.isArray(labels) ? labels as readonly string[] : (labels as Verbalizer).labels
  let n = 0
  let correct = 0
  examples.forEach((e, i) => {
    if (e.label === undefined) return
    if (!known.includes(e.label)) {
      throw new PetError(`${e.source}: unknown label '${e.label}' (known labels: ${known.map(l => `'${l}'`).join(', ')})`, 'EDATA')
    }
    n++
    if (predictions[i].label === e.label) correct++
  })
  return { accuracy: n > 0 ? correct / n : NaN, n, correct }
}
