// #26: the library's workflows on each tiny family (RoBERTa, XLM-R, ALBERT, ERNIE): zero-shot scores, PET training
// (its output loads with Classifier), P-tuning with the frozen model's prompt rows (no [unusedN] in BPE
// vocabularies: promptTokenId stands in) and fine-tuning of the [CLS] head. Each run is tiny: four examples.
import t from 'tap'
import * as path from 'node:path'
import { Classifier } from '../lib/classifier'
import { finetune } from '../lib/workflows/finetune'
import { ptune } from '../lib/workflows/ptune'
import { train } from '../lib/workflows/train'
import { zeroShot } from '../lib/workflows/zero-shot'
import { isAccuracyOver } from './helpers/accuracy'
import { fixtures, tmpDir } from './helpers/paths'

const english = { pattern: '{text} [SEP] It was[MASK].', verbalizer: { pos: ['good'], neg: ['bad'] },
  data: [{ text: 'a good movie', label: 'pos' }, { text: 'a bad film', label: 'neg' }, { text: 'good fun', label: 'pos' }, { text: 'bad acting', label: 'neg' }] }
const chinese = { pattern: '{text}[SEP]这是[MASK]的。', verbalizer: { pos: ['好'], neg: ['坏'] },
  data: [{ text: '服务很好', label: 'pos' }, { text: '质量太差', label: 'neg' }, { text: '非常满意', label: 'pos' }, { text: '很失望', label: 'neg' }] }
const families = [['roberta', english], ['xlmr', english], ['albert', chinese], ['ernie', chinese]] as const
const dir = tmpDir('pet-families-')

for (const [family, task] of families) {
  const model = path.join(fixtures, 'families', `tiny-${family}`)
  const common = { model, maxLength: 24, threads: 1, seed: 1 }
  const decreasing = (losses: number[]) => losses.length >= 2 && losses.every(Number.isFinite) && losses[losses.length - 1] < losses[0]

  t.test(`${family}: zero-shot, PET, P-tuning and fine-tuning run`, async t => {
    const zs = await zeroShot({ ...common, data: task.data, pattern: task.pattern, verbalizer: task.verbalizer })
    t.equal(zs.predictions.length, 4)
    t.ok(zs.predictions.every(p => Object.values(p.scores).every(Number.isFinite)), 'zero-shot: finite scores')

    const pet = await train({ ...common, train: task.data, dev: task.data, pattern: task.pattern, verbalizer: task.verbalizer,
      epochs: 3, batchSize: 4, lr: 1e-3, out: path.join(dir, `${family}-pet`) })
    t.ok(decreasing(pet.history.map(h => h.loss)), `PET: the epoch loss goes down (${pet.history.map(h => h.loss.toFixed(4)).join(' → ')})`)
    const c = await Classifier.load(pet.out)
    const got = await c.classify(task.data[0].text)
    t.ok(['pos', 'neg'].includes(got[0].label), 'PET: the output loads with Classifier and classifies')
    c.dispose()

    const pt = await ptune({ ...common, train: task.data, dev: task.data, verbalizer: task.verbalizer, promptTokens: 2,
      epochs: 3, batchSize: 4, lr: 0.05, out: path.join(dir, `${family}-pt`) })
    t.ok(decreasing(pt.history.map(h => h.loss)), `P-tuning (frozen, prompt rows): the loss goes down (${pt.history.map(h => h.loss.toFixed(4)).join(' → ')})`)
    const adapter = await Classifier.load(pt.out)
    t.equal(adapter.kind, 'ptuning')
    t.ok(['pos', 'neg'].includes((await adapter.classify(task.data[1].text))[0].label), 'P-tuning: the adapter loads onto its base model and classifies')
    adapter.dispose()

    const ft = await finetune({ ...common, train: task.data, dev: task.data, epochs: 2, batchSize: 4, lr: 1e-3, out: path.join(dir, `${family}-ft`) })
    t.equal(ft.history.length, 2)
    t.ok(ft.history.every(h => Number.isFinite(h.loss)), 'fine-tuning: finite losses')
    // dev is the 4 examples: an accuracy k/4, the best of the epochs' (the kept checkpoint's)
    t.ok(isAccuracyOver(ft.devAccuracy, 4), `fine-tuning: a dev accuracy k/4 (${ft.devAccuracy})`)
    t.equal(ft.devAccuracy, Math.max(...ft.history.map(h => h.dev ?? -1)), "fine-tuning: the best epoch's dev accuracy")
  })
}

t.test('a workflow given a hub name takes the model from the HF cache (offline: no download tried)', async t => {
  const fs = await import('node:fs')
  const cache = tmpDir('pet-hub-cache-')
  const commit = 'b'.repeat(40)
  const repoDir = path.join(cache, 'models--acme--tiny-roberta')
  const snapshot = path.join(repoDir, 'snapshots', commit)
  fs.mkdirSync(snapshot, { recursive: true })
  const src = path.join(fixtures, 'families', 'tiny-roberta')
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(snapshot, f))
  fs.mkdirSync(path.join(repoDir, 'refs'))
  fs.writeFileSync(path.join(repoDir, 'refs', 'main'), commit)
  const saved = { cache: process.env.HF_HUB_CACHE, offline: process.env.HF_HUB_OFFLINE }
  process.env.HF_HUB_CACHE = cache
  process.env.HF_HUB_OFFLINE = '1'
  t.teardown(() => {
    for (const [k, v] of [['HF_HUB_CACHE', saved.cache], ['HF_HUB_OFFLINE', saved.offline]] as const) {
      if (v === undefined) delete process.env[k]; else process.env[k] = v
    }
  })
  const common = { pattern: english.pattern, verbalizer: english.verbalizer, maxLength: 24, threads: 1 }
  const byName = await zeroShot({ ...common, data: english.data, model: 'acme/tiny-roberta' })
  t.equal(byName.model, snapshot, 'the snapshot folder of refs/main')
  const byFolder = await zeroShot({ ...common, data: english.data, model: src })
  t.same(byName.predictions, byFolder.predictions, 'the same predictions as the folder itself')
  const pet = await train({ ...common, model: 'acme/tiny-roberta', train: english.data, dev: english.data, epochs: 1, batchSize: 4, out: path.join(dir, 'hub-pet') })
  t.ok(Number.isFinite(pet.history[0].loss), 'train runs on it too')
  await t.rejects(zeroShot({ ...common, data: english.data, model: 'acme/not-cached' }), { code: 'EOFFLINE', message: /acme\/not-cached.*not in the HF cache/ })
})
