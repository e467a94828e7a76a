import { performance } from 'node:perf_hooks'
import { writeFileAtomic } from '../atomic-write'
import { toExamples } from '../data/examples'
import { readJsonl } from '../data/jsonl'
import { defaultModelDir, MaskedLM } from '../model'
import { Pattern } from '../pet/pattern'
import { accuracy, scoreExamples } from '../pet/score'
import { Verbalizer } from '../pet/verbalizer'
import { progress } from '../progress'
import { choice, intFlag, labelMapFlag, Output, parse, required } from './args'

export const usage = `pet zero-shot [--model DIR] --data FILE.jsonl --pattern '[MASK]满意。{text}'
    --verbalizer '{"positive":["很"],"negative":["不"]}' [--text-field text] [--label-field label]
    [--label-map JSON (raw label -> verbalizer label, e.g. TNEWS '{"news_sports":"体育",…}')]
    [--out preds.jsonl] [--batch-size 32] [--max-length 128] [--device cpu] [--threads N]
    [--many-to-one mean|logsumexp] [--multi-token sum|mean|iterative] [--seed S] [--json]
  Scores every example with the off-the-shelf MLM and prints the accuracy over labeled lines.
  With --json the last stdout line is {"accuracy":…, "n":…, …}.`

export async function run (argv: string[]): Promise<void> {
  const a = parse(argv, {
    model: { type: 'string' },
    data: { type: 'string' },
    pattern: { type: 'string' },
    verbalizer: { type: 'string' },
    'text-field': { type: 'string' },
    'label-field': { type: 'string' },
    'label-map': { type: 'string' },
    out: { type: 'string' },
    'batch-size': { type: 'string' },
    'max-length': { type: 'string' },
    device: { type: 'string' },
    threads: { type: 'string' },
    'many-to-one': { type: 'string' },
    'multi-token': { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'boolean' }
  })
  if (a.help) { console.log(usage); return }
  const out = new Output(a.json === true)
  const dataFile = required(a, 'data')
  const pattern = new Pattern(required(a, 'pattern'))
  const verbalizerJson = required(a, 'verbalizer')
  const batchSize = intFlag(a, 'batch-size', 32)
  const maxLength = intFlag(a, 'max-length', 128, 3)
  intFlag(a, 'seed', 42, 0) // scoring is deterministic; accepted for uniformity with the training commands
  const threads = a.threads === undefined ? undefined : intFlag(a, 'threads', 1)
  const labelScores = {
    manyToOne: choice(a, 'many-to-one', ['mean', 'logsumexp'] as const, 'mean'),
    multiToken: choice(a, 'multi-token', ['sum', 'mean', 'iterative'] as const, 'sum'),
    score: 'logit' as const
  }
  const textField = (a['text-field'] as string | undefined) ?? 'text'
  const labelField = (a['label-field'] as string | undefined) ?? 'label'
  const labelMap = labelMapFlag(a)

  const records = readJsonl(dataFile)
  const model = await MaskedLM.load((a.model as string | undefined) ?? defaultModelDir, { device: (a.device as string | undefined) ?? 'cpu', threads })
  try {
    const verbalizer = Verbalizer.parse(verbalizerJson, model.tokenizer)
    const fields = pattern.fields.length === 1 ? { [pattern.fields[0]]: textField } : undefined
    const examples = toExamples(records, pattern.fields, dataFile, { fields, labelField, labelMap })
    const bar = progress('zero-shot', examples.length, { quiet: out.json })
    const t0 = performance.now()
    const preds = await scoreExamples(model, pattern, verbalizer, examples, {
      batchSize, maxLength, labelScores, onProgress: done => bar.update(done)
    })
    bar.stop()
    const seconds = (performance.now() - t0) / 1000
    const ev = accuracy(examples, preds, verbalizer)
    if (a.out) {
      writeFileAtomic(a.out as string, preds.map((p, i) => JSON.stringify({
        index: i,
        label: p.label,
        ...(examples[i].label !== undefined ? { gold: examples[i].label } : {}),
        scores: Object.fromEntries(verbalizer.labels.map((l, j) => [l, p.scores[j]])),
        probs: Object.fromEntries(verbalizer.labels.map((l, j) => [l, p.probs[j]]))
      })).join('\n') + '\n')
    }
    if (ev.n > 0) out.line(`accuracy: ${ev.accuracy.toFixed(4)} (${ev.correct}/${ev.n})  pattern: ${pattern.source}`)
    else out.line(`scored ${examples.length} unlabeled examples`)
    out.line(`${examples.length} examples in ${seconds.toFixed(1)} s (${(examples.length / seconds).toFixed(1)}/s)`)
    out.summary({
      accuracy: ev.n > 0 ? ev.accuracy : null,
      n: ev.n,
      correct: ev.correct,
      examples: examples.length,
      pattern: pattern.source,
      verbalizer: verbalizer.toJSON(),
      model: model.dir,
      seconds,
      sentences_per_s: examples.length / seconds
    })
  } finally {
    model.dispose()
  }
}
