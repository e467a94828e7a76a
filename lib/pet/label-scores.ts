// The one scoring rule: how the candidate scores at the [MASK] slots become one score per label. It is written
// here once, as data — which candidate at which slot each word uses and with what weight, whether words score
// with raw logits or log-probabilities, how a label's words combine — and applied by inference (labelScores
// below), by the training loss (the same matrix handed to the native core's verbalizer_label_scores, which
// applies it differentiably) and so by ensembles, distillation and iPET, which score through inference.
import type { NativeLoss } from '../../bindings'
import type { Verbalizer } from './verbalizer'

/**
 * The many-to-one rules: how the scores of a label's several words become the label's score (combineLabelWords). One
 * concept under the names its layers use: the option manyToOne, ScoringRule.logsumexp, NativeLoss.labelAggregate and
 * the native core's label_logsumexp.
 */
export const manyToOneRules = ['mean', 'logsumexp'] as const

/** The multi-token rules: how a word of several tokens is scored (LabelScoreOptions.multiToken). */
export const multiTokenRules = ['auto', 'sum', 'mean', 'iterative'] as const

/** A causal LM's label score: the word alone, or the word and the rest of the pattern (LabelScoreOptions.continuation). */
export const continuationRules = ['word', 'word+suffix'] as const

/** How the scores at the [MASK] slots become one score per label: the inputs of scoringRule. */
export interface LabelScoreOptions {
  /** several words for a label: the mean of their scores (PET) or log of the summed probabilities */
  manyToOne: typeof manyToOneRules[number]
  /**
   * multi-token words: the sum or the per-token mean of their tokens' log-probabilities in one pass, or PET's
   * iterative decoding ('iterative': fill the most confident slot with the word's token, run again, …; k passes
   * for a word of k tokens); 'auto': the sum when every word has the same token count (PET's, and the scores of
   * patterns with k [MASK]s), the mean when counts differ — a sum of more log-probabilities is lower, so it
   * favours short words (TNEWS test_public zero-shot, 2-4 character names: 17.1 % sum, 21.4 % mean)
   */
  multiToken: typeof multiTokenRules[number]
  /** single-slot words: raw logits (PET) or log-probabilities; multi-slot words always use log-probabilities */
  score: 'logit' | 'logprob'
  /**
   * causal LMs (lm-score.ts): a word's score is its log-probability after the prefix ('word', the default), or that
   * plus the log-probability of the rest of the pattern after the word ('word+suffix')
   */
  continuation?: typeof continuationRules[number]
}

/** PET's choices: the mean over a label's words, one-pass sums ('auto'), raw logits, the word alone for a causal LM. */
export const defaultLabelScoreOptions: LabelScoreOptions = { manyToOne: 'mean', multiToken: 'auto', score: 'logit', continuation: 'word' }

/** The scoring rule of one verbalizer as data: candidates, slots, each word's weights and label, how words combine. */
export interface ScoringRule {
  /** C: the candidate token ids scored at every slot */
  candidates: readonly number[]
  /** [MASK]s per cloze (one encoder pass each; see cloze.ts); an example's slots are the clozes' in this order */
  clozes: readonly number[]
  /** all slots of an example: the sum of clozes */
  slots: number
  /** [words, slots * C]: the weight of candidate c at slot s in word w's score */
  wordMatrix: Float32Array
  /** [words]: the label of each word */
  wordLabel: Int32Array
  numLabels: number
  /** words score with log-probabilities (logit - logZ) rather than raw logits */
  logprob: boolean
  /** a label's words combine by log-sum-exp (manyToOne 'logsumexp'; else: their mean) */
  logsumexp: boolean
}

/**
 * The rule for a verbalizer. A word of k tokens reads the k slots of the cloze of length k (cloze.ts): its score is
 * the sum of its tokens' scores there, or their mean ('mean': normalised by length). Raw logits only where they are
 * PET's choice and comparable: one slot, the mean over words; several slots (a sum across positions with
 * different normalisers) and log-sum-exp (a sum of probabilities) need log-probabilities. Iterative decoding uses
 * the one-pass sum where one pass is all there is (the training loss).
 */
export function scoringRule (v: Verbalizer, o: LabelScoreOptions = defaultLabelScoreOptions): ScoringRule {
  const clozes = v.lengths
  const S = clozes.reduce((a, b) => a + b, 0)
  const offset = new Map(clozes.map((k, g) => [k, clozes.slice(0, g).reduce((a, b) => a + b, 0)]))
  const C = v.candidates.length
  const logsumexp = o.manyToOne === 'logsumexp'
  const words = v.words.flatMap((ws, l) => ws.map(w => ({ ids: w.ids, label: l })))
  const wordMatrix = new Float32Array(words.length * S * C)
  const perToken = perTokenMean(o, clozes.length)
  words.forEach((w, i) => {
    const first = offset.get(w.ids.length)!
    const weight = perToken ? 1 / w.ids.length : 1
    w.ids.forEach((id, s) => { wordMatrix[i * S * C + (first + s) * C + v.candidateIndex.get(id)!] = weight })
  })
  return {
    candidates: v.candidates,
    clozes,
    slots: S,
    wordMatrix,
    wordLabel: Int32Array.from(words.map(w => w.label)),
    numLabels: v.labels.length,
    logprob: S > 1 || o.score === 'logprob' || logsumexp,
    logsumexp
  }
}

/**
 * Whether a multi-token word scores as the mean of its tokens' scores (else their sum): multiToken 'mean', or 'auto'
 * when the verbalizer's words have more than one distinct token count. Masked and causal LMs share it.
 */
export function perTokenMean (o: LabelScoreOptions, distinctLengths: number): boolean {
  return o.multiToken === 'mean' || (o.multiToken === 'auto' && distinctLengths > 1)
}

/**
 * The many-to-one rule, written once for inference (the native verbalizer_label_scores applies the same in the
 * training loss): word scores ([words], in the rule's order) -> label scores ([labels]). A label with one word scores
 * as that word; several words score as their mean, or as the log of their summed exponentials (manyToOne
 * 'logsumexp').
 */
export function combineLabelWords (rule: ScoringRule, wordScores: ArrayLike<number>): number[] {
  const per: number[][] = Array.from({ length: rule.numLabels }, () => [])
  for (let w = 0; w < rule.wordLabel.length; w++) per[rule.wordLabel[w]].push(wordScores[w])
  return per.map(xs => {
    if (xs.length === 1) return xs[0]
    if (!rule.logsumexp) return xs.reduce((a, b) => a + b, 0) / xs.length
    const max = Math.max(...xs)
    return max + Math.log(xs.reduce((a, s) => a + Math.exp(s - max), 0))
  })
}

/**
 * One example's label scores. logits/logZ hold its slots in pattern order: logits[slot * C + c] for candidate c,
 * logZ[slot]. Same arithmetic as the native verbalizer_label_scores (tested against it).
 */
export function applyRule (rule: ScoringRule, logits: ArrayLike<number>, logZ: ArrayLike<number>): number[] {
  const C = rule.candidates.length
  const SC = rule.slots * C
  const words = new Array<number>(rule.wordLabel.length)
  for (let w = 0; w < words.length; w++) {
    let s = 0
    for (let k = 0; k < SC; k++) {
      const m = rule.wordMatrix[w * SC + k]
      if (m !== 0) s += m * (rule.logprob ? logits[k] - logZ[Math.floor(k / C)] : logits[k])
    }
    words[w] = s
  }
  return combineLabelWords(rule, words)
}

/** labelScores(v, logits, logZ, options): applyRule with the verbalizer's rule (kept for callers of one example). */
export function labelScores (v: Verbalizer, logits: ArrayLike<number>, logZ: ArrayLike<number>,
  opts: LabelScoreOptions = defaultLabelScoreOptions): number[] {
  return applyRule(scoringRule(v, opts), logits, logZ)
}

/** The index of the largest value (the first of equal ones): the predicted label of a row of label scores. */
export function argmax (xs: ArrayLike<number>): number {
  let best = 0
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i
  return best
}

/** Softmax of label scores (probabilities for ensembling and soft labels). */
export function softmax (xs: readonly number[], temperature = 1): number[] {
  const max = Math.max(...xs)
  const e = xs.map(x => Math.exp((x - max) / temperature))
  const z = e.reduce((a, b) => a + b, 0)
  return e.map(x => x / z)
}

/** The verbalizer loss terms (cross-entropy over the labels' scores at the answer slots) of a step's loss. */
export function labelLossTerms (rule: ScoringRule, positions: readonly number[], targets: readonly number[], weight: number): NativeLoss {
  return {
    labelPositions: Int32Array.from(positions),
    labelCandidates: Int32Array.from(rule.candidates),
    wordMatrix: rule.wordMatrix,
    wordLabel: rule.wordLabel,
    labelTargets: Int32Array.from(targets),
    labelScore: rule.logprob ? 'logprob' : 'logit',
    labelAggregate: rule.logsumexp ? 'logsumexp' : 'mean',
    labelWeight: weight
  }
}

/**
 * A training step's loss, from the (row, column) positions and targets its batch collected: the vocabulary
 * cross-entropy (MLM or LM) and the verbalizer terms. labelLoss 'vocab' gives the vocabulary terms all the weight;
 * 'verbalizer' splits it, alpha to the labels and 1 - alpha to the vocabulary.
 */
export function stepLoss (rule: ScoringRule, labelLoss: 'vocab' | 'verbalizer', alpha: number,
  vocab: { positions: readonly number[], targets: readonly number[] },
  label: { positions: readonly number[], targets: readonly number[] }): NativeLoss {
  const loss: NativeLoss = {}
  if (vocab.targets.length > 0) {
    loss.vocabPositions = Int32Array.from(vocab.positions)
    loss.vocabTargets = Int32Array.from(vocab.targets)
    loss.vocabWeight = labelLoss === 'vocab' ? 1 : 1 - alpha
  }
  if (label.targets.length > 0) Object.assign(loss, labelLossTerms(rule, label.positions, label.targets, alpha))
  return loss
}
