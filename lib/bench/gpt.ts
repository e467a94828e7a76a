// A causal LM (GPT-2) on the bench: zero-shot scoring through the library's own path (every label word as a branch
// after the prefix, one pass per example: lm-score.ts), PET training steps with its LM loss (causal-train.ts), and
// how the one-pass scoring scales with the number of labels (2, 15, 120 words of 1-5 tokens).
import { argmax, MaskedLM, Pattern, scoringRule, Verbalizer, type Tokenizer } from '../advanced'
// internals the GPT-2 bench times directly (not part of the public API)
import { loadExamples } from '../data/examples'
import type { CausalInput } from '../pet/pattern'
import { causalScores } from '../pet/lm-score'
import { encodeCausalExamples } from '../pet/score'
import { defaultLabelScoreOptions } from '../pet/label-scores'
import { petSteps } from '../pet/train'
import { Rng } from '../train/rng'
import { timeBatchSizes } from './inputs'
import { maxRssMb, type GptLabelsJob, type GptLabelsResult, type GptScoreJob, type GptScoreResult, type TrainJob, type TrainRunResult } from './jobs'
import { timeTrainSteps } from './ours'
import { percentile } from './stats'

function examplesOf (job: { data: string, limit?: number }, fields: string[]) {
  const all = loadExamples(job.data, fields, { labelField: 'label' }, 'data')
  return job.limit === undefined ? all : all.slice(0, job.limit)
}

/** One timed pass of zero-shot scoring over `inputs` in length-sorted batches: seconds and predicted labels. */
async function scorePass (model: MaskedLM, verbalizer: Verbalizer, inputs: readonly CausalInput[], batchSize: number): Promise<{ seconds: number, labels: number[], latencies: number[] }> {
  const rule = scoringRule(verbalizer, defaultLabelScoreOptions)
  const labels = new Array<number>(inputs.length)
  const runBatch = async (bucket: number[]) => {
    const scores = await causalScores(model, verbalizer, rule, defaultLabelScoreOptions, bucket.map(i => inputs[i]))
    bucket.forEach((i, b) => { labels[i] = argmax(scores[b]) })
  }
  const [t] = await timeBatchSizes(inputs.map(e => e.prefix.length), [batchSize], 'sorted', 1, runBatch, () => {})
  return { seconds: t.seconds, labels, latencies: t.latencies }
}

export async function runGptScore (job: GptScoreJob): Promise<GptScoreResult> {
  const t0 = performance.now()
  const model = await MaskedLM.load(job.model, { threads: job.threads, precision: job.precision })
  const loadMs = performance.now() - t0
  try {
    const pattern = new Pattern(job.pattern)
    const verbalizer = Verbalizer.parse(job.verbalizer, model.tokenizer, pattern)
    const examples = examplesOf(job, [...pattern.fields])
    const inputs = encodeCausalExamples(model, pattern, verbalizer, examples, job.maxLength)
    const gold = examples.map(e => e.label === undefined ? -1 : verbalizer.labelIndex(e.label))
    const labeled = gold.filter(g => g >= 0).length
    const results = []
    for (const batchSize of job.batchSizes) {
      const r = await scorePass(model, verbalizer, inputs, batchSize)
      const correct = gold.filter((g, i) => g >= 0 && r.labels[i] === g).length
      results.push({
        batchSize, seconds: r.seconds, sentencesPerS: inputs.length / r.seconds, p50Ms: percentile(r.latencies, 50),
        correct, labeled, labels: r.labels
      })
    }
    return { side: 'gpt', n: inputs.length, loadMs, results, peakRssMb: maxRssMb(), threads: model.info.threads }
  } finally {
    model.dispose()
  }
}

/** `count` distinct words of 1-5 characters from the vocabulary's CJK characters (a fixed, seeded draw). */
export function syntheticLabels (tok: Tokenizer, count: number): Record<string, string[]> {
  const chars: string[] = []
  for (let id = 0; id < tok.vocabSize; id++) { const t = tok.idToToken(id); if (t && /^[\u4e00-\u9fff]$/.test(t)) chars.push(t) }
  let s = 12345
  const rand = (n: number) => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s % n }
  const words = new Set<string>()
  while (words.size < count) words.add(Array.from({ length: 1 + (words.size % 5) }, () => chars[rand(chars.length)]).join(''))
  return Object.fromEntries([...words].map((w, i) => [`label${i}`, [w]]))
}

/** TNEWS's 15 topics by their long names (2-4 tokens). */
export const tnewsLabels: Record<string, string[]> = Object.fromEntries(
  ['民间故事', '文化艺术', '娱乐明星', '体育', '财经', '房地产', '汽车', '教育', '科学技术', '军事', '旅游', '国际', '股票', '农业农村', '电子竞技'].map(w => [w, [w]]))

export async function runGptLabels (job: GptLabelsJob): Promise<GptLabelsResult> {
  const model = await MaskedLM.load(job.model, { threads: job.threads, precision: job.precision })
  try {
    const cases: Array<[string, string, Record<string, string[]>]> = [
      ['2 labels, 1 token', '{text}总之，[MASK]好。', { positive: ['很'], negative: ['不'] }],
      ['15 labels, 2-4 tokens', '{text}这是一则[MASK]新闻。', tnewsLabels],
      ['120 labels, 1-5 tokens', '{text}这是[MASK]。', syntheticLabels(model.tokenizer, 120)]
    ]
    const rows = []
    for (const [name, source, spec] of cases) {
      const pattern = new Pattern(source)
      const verbalizer = new Verbalizer(spec, model.tokenizer, pattern)
      const inputs = encodeCausalExamples(model, pattern, verbalizer, examplesOf(job, [...pattern.fields]), job.maxLength)
      const wordTokens = verbalizer.words.flat().reduce((a, w) => a + w.ids.length, 0)
      const prefix = inputs.reduce((a, e) => a + e.prefix.length, 0) / inputs.length
      const r = await scorePass(model, verbalizer, inputs, job.batchSize)
      rows.push({
        case: name, labels: verbalizer.labels.length, sentencesPerS: inputs.length / r.seconds,
        // one branched pass: the prefix once plus every word; k separate passes: the prefix again for every word
        tokensPerExample: prefix + wordTokens, separatePassTokens: verbalizer.words.flat().length * prefix + wordTokens
      })
    }
    return { side: 'gpt-labels', n: job.limit ?? 0, batchSize: job.batchSize, rows }
  } finally {
    model.dispose()
  }
}

/** PET training steps of a causal LM: the LM loss over [CLS] + prefix + the gold word + the rest (labelLoss 'vocab'). */
export async function runGptTrain (job: TrainJob): Promise<TrainRunResult> {
  const model = await MaskedLM.load(job.model, { threads: job.threads, precision: job.precision })
  try {
    const pattern = new Pattern(job.pattern)
    const verbalizer = Verbalizer.parse(job.verbalizer, model.tokenizer, pattern)
    const labeled = examplesOf(job, [...pattern.fields]).filter(e => e.label !== undefined)
    if (labeled.length === 0) throw new Error('training needs labeled examples')
    const builder = petSteps(model, pattern, verbalizer, labeled, [], {
      labelLoss: 'vocab', alpha: 1, unlabeledRatio: 0, labelScores: defaultLabelScoreOptions, maxLength: job.maxLength
    })
    const rng = new Rng(job.seed)
    const steps = Array.from({ length: job.warmupSteps + job.steps }, (_, s) => {
      const items = Array.from({ length: job.batchSize }, (_, k) => builder.items[(s * job.batchSize + k) % builder.items.length])
      return builder.buildStep(items, rng)
    })
    return await timeTrainSteps(model, job, steps)
  } finally {
    model.dispose()
  }
}
