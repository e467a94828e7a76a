// The library as a Node tool embeds it: every workflow in-process, the Classifier object, one validation boundary
// (bad options are PetErrors naming the option, never a hang or a crash), AbortSignal and resume, progress events.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import {
  Classifier, distill, ensemble, finetune, PetError, predict, pretrain, ptune, tokenize, train, zeroShot, type ProgressEvent
} from '../lib/index'
import { MaskedLM, Pattern, scoreExamples, toExamples, Verbalizer } from '../lib/advanced'
import { isAccuracyOver } from './helpers/accuracy'
import { miniMlm, sentiment, tmpDir } from './helpers/paths'

const dir = tmpDir()
const read = (file: string, from: number, to: number) =>
  fs.readFileSync(path.join(sentiment, file), 'utf8').split('\n').slice(from, to).map(l => JSON.parse(l) as { text: string, label: string })
const labeled = read('train.jsonl', 0, 16)
const dev = read('valid.jsonl', 0, 40)
const P1 = '[MASK]满意。{text}'
const V = { positive: ['很'], negative: ['不'] }

/** Asserts that `p` rejects with a PetError of this code whose message matches. */
async function rejects (t: Tap.Test, p: Promise<unknown>, code: string, message: RegExp, what: string): Promise<void> {
  const err = await p.then(() => undefined, e => e as unknown)
  t.ok(err instanceof PetError, `${what}: a PetError`)
  t.equal((err as PetError | undefined)?.code, code, `${what}: code ${code}`)
  t.match((err as Error | undefined)?.message, message, what)
}

t.test('bad options are PetErrors (EINVAL) naming the option, at once', async t => {
  const model = await MaskedLM.load(miniMlm)
  t.teardown(() => model.dispose())
  const pattern = new Pattern(P1)
  const verbalizer = new Verbalizer(V, model.tokenizer)
  const examples = toExamples(['好', '不好'])
  // batchSize 0 or -3 used to loop while allocating until Node died of out-of-memory; 1.5 was taken silently
  for (const batchSize of [0, -3, 1.5, NaN, '8' as unknown as number]) {
    const t0 = Date.now()
    await rejects(t, scoreExamples(model, pattern, verbalizer, examples, { batchSize }), 'EINVAL', /for batchSize/, `scoreExamples batchSize ${String(batchSize)}`)
    t.ok(Date.now() - t0 < 1000, 'rejected before any work')
  }
  await rejects(t, scoreExamples(model, pattern, verbalizer, examples, { bogus: 1 } as object), 'EINVAL', /Unknown option 'bogus'/, 'an unknown scoring option')
  await rejects(t, train({ train: labeled, pattern: P1, verbalizer: V, batchSize: 0 }), 'EINVAL', /for batchSize but received 0/, 'train batchSize 0')
  await rejects(t, train({ train: labeled, pattern: P1, verbalizer: V, epochs: 2.5 }), 'EINVAL', /for epochs/, 'train epochs 2.5')
  await rejects(t, train({ train: labeled, pattern: P1, verbalizer: V, lr: -1 }), 'EINVAL', /for lr/, 'train lr -1')
  await rejects(t, train({ train: labeled, pattern: P1, verbalizer: V, epoch: 3 } as object as Parameters<typeof train>[0]), 'EINVAL', /Unknown option 'epoch' for train/, 'a misspelt option')
  await rejects(t, train({ train: labeled, pattern: P1 } as Parameters<typeof train>[0]), 'EINVAL', /'verbalizer' is required/, 'a missing option')
  await rejects(t, train({ train: labeled, pattern: P1, verbalizer: '{"positive":["很"]}' as unknown as typeof V }), 'EINVAL', /for verbalizer/, 'a verbalizer that is not an object')
  await rejects(t, train({ train: [], pattern: P1, verbalizer: V }), 'EINVAL', /train has no records/, 'no training records')
  await rejects(t, train({ train: [42 as unknown as string], pattern: P1, verbalizer: V }), 'EINVAL', /for train\[0\]/, 'a record that is neither string nor object')
  await rejects(t, train({ train: labeled, pattern: P1, verbalizer: V, manyToOne: 'max' as 'mean' }), 'EINVAL', /one of 'mean', 'logsumexp' for manyToOne/, 'an enum value')
  await rejects(t, zeroShot({ data: ['好'], pattern: P1, verbalizer: V, signal: {} as AbortSignal }), 'EINVAL', /AbortSignal for signal/, 'a signal that is not one')
  await rejects(t, zeroShot(undefined as unknown as Parameters<typeof zeroShot>[0]), 'EINVAL', /'data' is required/, 'no options at all')
  await rejects(t, Classifier.load(dir), 'ENOENT', /holds no trained model/, 'Classifier.load of a folder without a model')
  await rejects(t, MaskedLM.load(path.join(dir, 'nope')), 'ENOENT', /model directory not found/, 'a missing model')
})

t.test('native errors reach the caller as PetErrors (the raw native object is not exposed)', async t => {
  const model = await MaskedLM.load(miniMlm)
  t.equal((model as unknown as Record<string, unknown>).core, undefined, 'no model.core')
  const batch = { inputIds: Int32Array.from([101, 103, 102]), batchSize: 1, seqLen: 3 }
  await rejects(t, model.logitsAt(batch, Int32Array.from([0, 7])), 'ENATIVE', /./, 'a position outside the batch')
  await rejects(t, model.logitsAt({ ...batch, seqLen: 4 }, Int32Array.from([0, 1])), 'ENATIVE', /./, 'a batch whose sizes disagree')
  t.throws(() => model.getTensor('no.such.tensor'), PetError, 'a synchronous native error too')
  model.dispose()
  await rejects(t, model.logitsAt(batch, Int32Array.from([0, 1])), 'ENATIVE', /disposed/, 'a disposed model')
})

t.test('zeroShot on records in memory: progress events, an AbortSignal', async t => {
  const events: ProgressEvent[] = []
  const r = await zeroShot({ data: dev, pattern: P1, verbalizer: V, batchSize: 8, onProgress: e => events.push(e) })
  t.equal(r.examples, 40)
  t.equal(r.n, 40)
  t.equal(r.accuracy, r.correct / 40)
  t.equal(r.predictions.length, 40)
  t.equal(r.predictions.filter((p, i) => p.label === dev[i].label).length, r.correct, 'the predictions are what the accuracy counts')
  t.same(events.map(e => e.kind === 'score' ? e.done : -1), [8, 16, 24, 32, 40], 'one score event per batch')
  const ac = new AbortController()
  ac.abort()
  await rejects(t, zeroShot({ data: dev, pattern: P1, verbalizer: V, signal: ac.signal }), 'EABORT', /scoring was aborted/, 'an aborted signal')
  const late = new AbortController()
  await rejects(t, zeroShot({ data: dev, pattern: P1, verbalizer: V, batchSize: 8, signal: late.signal, onProgress: e => { if (e.kind === 'score' && e.done === 16) late.abort() } }),
    'EABORT', /aborted/, 'aborted between batches')
})

t.test('train in-process, Classifier.load, classify; concurrent calls equal serial ones', async t => {
  const out = path.join(dir, 'pet')
  const events: ProgressEvent[] = []
  const r = await train({ train: labeled, dev, test: dev, pattern: P1, verbalizer: V, epochs: 2, batchSize: 8, seed: 1, out, onProgress: e => events.push(e) })
  t.equal(r.bestEpoch >= 1 && r.bestEpoch <= 2, true, `best epoch ${r.bestEpoch}`)
  t.equal(r.steps, 4)
  t.equal(r.labeled, 16)
  t.ok(isAccuracyOver(r.devAccuracy, 40), `dev accuracy is k/40 (${r.devAccuracy})`)
  t.equal(r.testAccuracy, r.devAccuracy, 'the best checkpoint scores the same on the same examples')
  t.equal(r.history.length, 2)
  t.ok(r.history.every(h => Number.isFinite(h.loss) && h.loss > 0), 'the history holds each epoch\'s loss')
  t.equal(r.model, path.join(out, 'best'))
  for (const f of [r.report.json, r.report.md, r.report.chart]) t.ok(fs.existsSync(f), path.basename(f))
  t.match(fs.readFileSync(r.report.md, 'utf8'), /!\[loss and dev accuracy per epoch\]\(report\.svg\)/, 'report.md links the chart')
  t.same(events.filter(e => e.kind === 'train').map(e => e.kind === 'train' && e.done), [1, 2, 3, 4], 'a train event per step')
  t.same(events.filter(e => e.kind === 'epoch').map(e => e.kind === 'epoch' && e.epoch), [1, 2], 'an epoch event per epoch')

  const c = await Classifier.load(out)
  t.teardown(() => c.dispose())
  t.equal(c.kind, 'pet')
  t.same(c.labels, ['positive', 'negative'])
  const texts = dev.map(d => d.text)
  const serial = []
  for (let i = 0; i < texts.length; i += 10) serial.push(...await c.classify(texts.slice(i, i + 10)))
  const concurrent = (await Promise.all([0, 10, 20, 30].map(i => c.classify(texts.slice(i, i + 10))))).flat()
  t.same(concurrent, serial, 'concurrent classify calls return exactly what serial calls return')
  t.equal(serial.filter((p, i) => p.label === dev[i].label).length / 40, r.devAccuracy, 'the classifier reproduces the run\'s dev accuracy')
  t.ok(serial.every(p => Math.abs(p.probs.positive + p.probs.negative - 1) < 1e-6), 'probabilities by label sum to 1')
  t.same(await c.classify(dev.slice(0, 3)), await c.classify(texts.slice(0, 3)), 'records and texts classify alike')
  t.same((await c.classify(texts[0]))[0].label, serial[0].label, 'a single text')
  const p = await predict({ model: out, data: dev })
  t.equal(p.accuracy, r.devAccuracy, 'predict() on the run directory')
  await rejects(t, c.classify([{ review: 'x' }]), 'EDATA', /inputs\[0\]: no text field 'text'/, 'a record without the text field')
  // disposing while calls are in flight: they reject with a PetError, the process lives on
  const other = await Classifier.load(out)
  const inFlight = [other.classify(texts), other.classify(texts.slice(0, 5))]
  other.dispose()
  const settled = await Promise.allSettled(inFlight)
  t.ok(settled.every(x => x.status === 'fulfilled' || (x.reason instanceof PetError && /disposed/.test(x.reason.message))),
    `each call finished or rejected with a PetError (${settled.map(x => x.status).join(', ')})`)
  await rejects(t, other.classify(texts), 'ENATIVE', /disposed/, 'a call after dispose')
})

t.test('an aborted training run leaves last/; resume finishes it as if never stopped', async t => {
  const opts = { train: labeled, dev, pattern: P1, verbalizer: V, epochs: 3, batchSize: 4, seed: 3 }
  const whole = await train({ ...opts, out: path.join(dir, 'whole') })
  const out = path.join(dir, 'cut')
  const ac = new AbortController()
  let stepsSeen = 0
  await rejects(t, train({ ...opts, out, signal: ac.signal, onProgress: e => { if (e.kind === 'train' && ++stepsSeen === 6) ac.abort() } }),
    'EABORT', /training .* epoch 2, step 3 of 4; resume continues it\) was aborted/, 'stops at the next step')
  const state = JSON.parse(fs.readFileSync(path.join(out, 'last', 'state.json'), 'utf8'))
  t.equal(state.steps, 6, 'the checkpoint is at the step the run reached')
  t.equal(state.partial.step, 2, 'inside epoch 2')
  const resumed = await train({ ...opts, out, resume: true })
  t.same(resumed.history.map(h => [h.loss, h.dev]), whole.history.map(h => [h.loss, h.dev]), 'same losses and dev accuracies epoch by epoch')
  t.equal(resumed.steps, whole.steps)
  t.notOk(fs.existsSync(path.join(out, 'last')), 'a finished run leaves no resume state')
})

t.test('finetune, distill, pretrain, ptune and ensemble in-process; Classifier loads each output', async t => {
  const ft = await finetune({ train: labeled, dev, epochs: 1, out: path.join(dir, 'ft') })
  t.same(ft.labels, ['negative', 'positive'])
  const cls = await Classifier.load(ft.model)
  t.equal(cls.kind, 'classifier')
  const byCls = await cls.classify(dev)
  t.equal(byCls.filter((p, i) => p.label === dev[i].label).length / 40, ft.devAccuracy, 'the [CLS] classifier reproduces its dev accuracy')
  cls.dispose()

  const soft = labeled.map(x => ({ text: x.text, logits: x.label === 'positive' ? [2, -1] : [-1, 2] }))
  const ds = await distill({ softLabels: soft, labels: ['positive', 'negative'], dev, distillEpochs: 1, out: path.join(dir, 'ds') })
  t.equal(ds.softLabeled, 16)
  t.equal((await Classifier.load(path.join(dir, 'ds', 'student'))).kind, 'classifier', 'the distilled student loads from its run directory')
  await rejects(t, distill({ softLabels: [{ text: 'x', logits: [1] }], labels: ['a', 'b'] }), 'EDATA', /softLabels\[0\]: "logits" must be 2 numbers/, 'soft labels of the wrong width')

  const pt = await pretrain({ data: dev.map(d => d.text), epochs: 1, batchSize: 20, out: path.join(dir, 'pre') })
  t.equal(pt.texts, 40)
  t.equal(pt.steps, 2)
  // zh-mini-mlm's MLM loss is about 2.9 on its corpus: well below a uniform guess's ln(V)
  t.ok(pt.finalMlmLoss !== null && pt.finalMlmLoss > 0 && pt.finalMlmLoss < Math.log(21128), `an MLM loss below ln(21128) (${pt.finalMlmLoss})`)
  t.ok(fs.existsSync(path.join(pt.model, 'model.safetensors')))

  const pr = await ptune({ train: labeled, dev, verbalizer: V, epochs: 1, promptTokens: 4, out: path.join(dir, 'pt') })
  t.equal(pr.mode, 'frozen')
  t.ok(pr.adapter !== null && fs.existsSync(path.join(pr.adapter, 'adapter_config.json')))
  const adapter = await Classifier.load(path.join(dir, 'pt'))
  t.equal(adapter.kind, 'ptuning', 'a frozen P-tuning run loads as base model + adapter')
  const byAdapter = await adapter.classify(dev)
  t.equal(byAdapter.filter((p, i) => p.label === dev[i].label).length / 40, pr.devAccuracy)
  adapter.dispose()

  const en = await ensemble({ patterns: [P1, '[MASK]好。{text}'], models: [path.join(dir, 'pet', 'best'), path.join(dir, 'pet', 'best')], train: labeled, dev, verbalizer: V, weighting: 'uniform', out: path.join(dir, 'ens') })
  t.equal(en.patterns.length, 2)
  t.ok(isAccuracyOver(en.devAccuracy, 40), `the ensemble's dev accuracy is k/40 (${en.devAccuracy})`)
})

t.test('tokenize() gives Hugging Face\'s ids: special tokens typed in the text are those tokens', async t => {
  const r = await tokenize({ text: '[MASK]满意。' })
  t.same(r.texts[0].tokens, ['[CLS]', '[MASK]', '满', '意', '。', '[SEP]'])
  t.equal(r.texts[0].inputIds[1], 103)
  const many = await tokenize({ input: ['好', { text: '不好' }] })
  t.equal(many.count, 2)
})
