// Checkpoint formats and layouts, and bad input: every failure is a thrown error naming the problem.
import t from 'tap'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { MaskedLM } from '../../lib/model'
import { ModelFolder } from '../../lib/model-folder'
import { miniMlm, repo, shared, tinyBertDir, tmpDir } from '../helpers/paths'
import { readSafetensors, writeSafetensors } from '../../lib/safetensors'
import { maxAbsDiff } from '../helpers/tensors'

const POS = Int32Array.from([0, 1, 0, 4])

async function probeLogits (dir: string): Promise<Float32Array> {
  const model = await MaskedLM.load(dir)
  try {
    const tok = model.tokenizer
    const ids = [tok.clsId, tok.maskId, ...tok.encode('我去了北京'), tok.sepId]
    return await model.logitsAt({ inputIds: Int32Array.from(ids), batchSize: 1, seqLen: ids.length }, POS)
  } finally {
    model.dispose()
  }
}

/** A copy of tiny-bert whose tensors went through `edit`. */
function editedTinyBert (edit: (m: Map<string, any>) => Map<string, any>, configEdit?: (c: any) => void): string {
  const dir = tinyBertDir()
  const file = path.join(dir, 'model.safetensors')
  writeSafetensors(file, edit(readSafetensors(file)))
  if (configEdit) {
    const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'))
    configEdit(c)
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c))
  }
  return dir
}

t.test('formats and layouts give the same logits', async t => {
  const base = tinyBertDir()
  const expected = await probeLogits(base)

  const model = await MaskedLM.load(base)
  const sharded = tmpDir()
  await model.save(sharded, { maxShardBytes: 1 << 20 })
  model.dispose()
  t.ok(fs.existsSync(path.join(sharded, 'model.safetensors.index.json')), 'an index was written')
  t.notOk(fs.existsSync(path.join(sharded, 'model.safetensors')))
  const shards = fs.readdirSync(sharded).filter(f => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f))
  t.ok(shards.length >= 2, `${shards.length} shards`)
  t.equal(maxAbsDiff(await probeLogits(sharded), expected), 0, 'sharded safetensors')
  const reloaded = await MaskedLM.load(sharded)
  t.equal(reloaded.info.format, 'safetensors-sharded')
  reloaded.dispose()

  const binDir = path.join(repo, 'test/fixtures/tiny-bert-bin')
  const bin = tmpDir()
  for (const f of fs.readdirSync(binDir)) fs.copyFileSync(path.join(binDir, f), path.join(bin, f))
  fs.copyFileSync(path.join(miniMlm, 'vocab.txt'), path.join(bin, 'vocab.txt'))
  const binModel = await MaskedLM.load(bin)
  t.equal(binModel.info.format, 'pytorch')
  t.ok(binModel.info.ignored.includes('cls.predictions.decoder.weight'), 'the tied decoder of the .bin is ignored')
  binModel.dispose()
  t.ok(maxAbsDiff(await probeLogits(bin), expected) <= 1e-6, 'pytorch_model.bin with legacy LayerNorm.gamma/beta names')

  const binSharded = tmpDir()
  for (const f of ['config.json']) fs.copyFileSync(path.join(binDir, f), path.join(binSharded, f))
  fs.copyFileSync(path.join(miniMlm, 'vocab.txt'), path.join(binSharded, 'vocab.txt'))
  fs.copyFileSync(path.join(binDir, 'pytorch_model.bin'), path.join(binSharded, 'pytorch_model-00001-of-00001.bin'))
  const names = readSafetensors(path.join(base, 'model.safetensors'))
  const weightMap = Object.fromEntries([...names.keys()].map(k => [k.replace('embeddings.LayerNorm.weight', 'embeddings.LayerNorm.gamma').replace('embeddings.LayerNorm.bias', 'embeddings.LayerNorm.beta'), 'pytorch_model-00001-of-00001.bin']))
  fs.writeFileSync(path.join(binSharded, 'pytorch_model.bin.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }))
  const bs = await MaskedLM.load(binSharded)
  t.equal(bs.info.format, 'pytorch-sharded')
  bs.dispose()
  t.ok(maxAbsDiff(await probeLogits(binSharded), expected) <= 1e-6, 'sharded pytorch_model.bin with its index')
  fs.writeFileSync(path.join(binSharded, 'pytorch_model.bin.index.json'), JSON.stringify({ weight_map: { ...weightMap, 'bert.extra.weight': 'pytorch_model-00001-of-00001.bin' } }))
  await t.rejects(MaskedLM.load(binSharded), /tensor "bert\.extra\.weight" is not in its shard/)

  const bare = editedTinyBert(m => new Map([...m].map(([k, v]) => [k.replace(/^bert\./, ''), v])))
  t.equal(maxAbsDiff(await probeLogits(bare), expected), 0, 'names without the bert. prefix')

  const withPooler = editedTinyBert(m => m.set('bert.pooler.dense.bias', { dtype: 'F32', shape: [32], data: new Float32Array(32).fill(0.5) }))
  const pm = await MaskedLM.load(withPooler)
  t.same(pm.info.unexpected, ['bert.pooler.dense.bias'], 'unexpected tensors are reported by name')
  const out = tmpDir()
  await pm.save(out)
  pm.dispose()
  t.ok(readSafetensors(path.join(out, 'model.safetensors')).has('bert.pooler.dense.bias'), 'and kept when saving')
})

/** A copy of one of the families' tiny models with some config.json fields replaced. */
function familyWithConfig (name: string, fields: Record<string, unknown>): string {
  const src = path.join(shared, 'fixtures/hf-reference/families', name)
  const dir = tmpDir()
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dir, f))
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'))
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...c, ...fields }))
  return dir
}

t.test('broken checkpoints are reported, never abort', async t => {
  const missing = editedTinyBert(m => { m.delete('bert.encoder.layer.1.output.dense.bias'); m.delete('cls.predictions.bias'); return m })
  await t.rejects(MaskedLM.load(missing), /2 tensor\(s\) missing.*bert\.encoder\.layer\.1\.output\.dense\.bias.*cls\.predictions\.bias/)

  const wrongShape = editedTinyBert(m => m.set('bert.encoder.layer.0.attention.self.query.bias', { dtype: 'F32', shape: [16], data: new Float32Array(16) }))
  await t.rejects(MaskedLM.load(wrongShape), /"bert\.encoder\.layer\.0\.attention\.self\.query\.bias" has shape \[16\], expected \[32\]/)

  const noHidden = editedTinyBert(m => m, c => { delete c.hidden_size })
  await t.rejects(MaskedLM.load(noHidden), /config has no "hidden_size"/)

  // A layer count far past the checkpoint's: refused before anything is listed or allocated (100 million layers had
  // exhausted memory), and a count a little past it names the first missing tensors, not all of them.
  const millions = editedTinyBert(m => m, c => { c.num_hidden_layers = 100_000_000 })
  await t.rejects(MaskedLM.load(millions), /num_hidden_layers 100000000 exceeds the 1024 layers supported/)
  const moreLayers = editedTinyBert(m => m, c => { c.num_hidden_layers = 24 })
  await t.rejects(MaskedLM.load(moreLayers), /352 tensor\(s\) missing from the checkpoint of a bert model: bert\.encoder\.layer\.2\.[^,]+(, [^,]+){7} and 344 more$/)
  await t.rejects(MaskedLM.load(familyWithConfig('tiny-albert', { inner_group_num: 1e12 })),
    /num_hidden_layers 3 x inner_group_num 1000000000000 exceeds the 1024 layers supported/)
  // RoBERTa's positions count from its padding id: a negative one had been an "index out of range" at the first batch
  await t.rejects(MaskedLM.load(familyWithConfig('tiny-roberta', { pad_token_id: -5 })), /pad_token_id -5 is negative/)
  await t.rejects(MaskedLM.load(familyWithConfig('tiny-roberta', { pad_token_id: 65 })),
    /max_position_embeddings 66 leaves no positions after the padding offset pad_token_id \+ 1 = 65 \+ 1/)

  const truncated = tinyBertDir()
  const f = path.join(truncated, 'model.safetensors')
  fs.truncateSync(f, fs.statSync(f).size - 1000)
  await t.rejects(MaskedLM.load(truncated), /corrupt safetensors file.*runs past the end/)

  const garbage = tinyBertDir()
  fs.writeFileSync(path.join(garbage, 'model.safetensors'), Buffer.from('this is not a safetensors file at all'))
  await t.rejects(MaskedLM.load(garbage), /corrupt safetensors file: header length/)

  const badJson = tinyBertDir()
  const hdr = Buffer.from('{"a": [1, 2')
  const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(hdr.length))
  fs.writeFileSync(path.join(badJson, 'model.safetensors'), Buffer.concat([len, hdr]))
  await t.rejects(MaskedLM.load(badJson), /header is not valid JSON/)

  // a shape whose byte count wraps around int64 to the 0 bytes it holds (had reached LibTorch's allocator)
  const wraps = tinyBertDir()
  const wrapHdr = Buffer.from('{"x": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}}'.padEnd(88))
  const wrapLen = Buffer.alloc(8); wrapLen.writeBigUInt64LE(BigInt(wrapHdr.length))
  fs.writeFileSync(path.join(wraps, 'model.safetensors'), Buffer.concat([wrapLen, wrapHdr]))
  await t.rejects(MaskedLM.load(wraps), /corrupt safetensors file: tensor "x" has a shape \[4611686018427387904,4\] too large to hold/)

  const empty = tinyBertDir()
  fs.rmSync(path.join(empty, 'model.safetensors'))
  await t.rejects(MaskedLM.load(empty), /no weights found/)

  await t.rejects(MaskedLM.load('/nonexistent/model'), /model directory not found/)
  await t.rejects(MaskedLM.load(tinyBertDir(), { device: 'cuda' }), /CUDA/)
  await t.rejects(MaskedLM.load(tinyBertDir(), { devise: 'cpu' } as any), /Unknown option 'devise'/)

  const binDir = tmpDir()
  fs.copyFileSync(path.join(repo, 'test/fixtures/tiny-bert-bin/config.json'), path.join(binDir, 'config.json'))
  fs.copyFileSync(path.join(miniMlm, 'vocab.txt'), path.join(binDir, 'vocab.txt'))
  const bin = fs.readFileSync(path.join(repo, 'test/fixtures/tiny-bert-bin/pytorch_model.bin'))
  fs.writeFileSync(path.join(binDir, 'pytorch_model.bin'), bin.subarray(0, bin.length >> 1))
  await t.rejects(MaskedLM.load(binDir), /pytorch_model\.bin/)
})

t.test('bad inputs to a loaded model are errors naming the problem', async t => {
  const model = await MaskedLM.load(tinyBertDir())
  t.teardown(() => model.dispose())
  const ok = { inputIds: Int32Array.from([101, 103, 102]), batchSize: 1, seqLen: 3 }
  const before = await model.logitsAt(ok, Int32Array.from([0, 1]))
  await t.rejects(model.logitsAt({ ...ok, inputIds: Int32Array.from([101, 21128, 102]) }, Int32Array.from([0, 1])), /token id 21128 is outside the vocabulary \(size 21128\)/)
  await t.rejects(model.logitsAt({ ...ok, inputIds: Int32Array.from([101, -5, 102]) }, Int32Array.from([0, 1])), /token id -5/)
  const long = new Int32Array(65).fill(100)
  await t.rejects(model.logitsAt({ inputIds: long, batchSize: 1, seqLen: 65 }, Int32Array.from([0, 1])), /sequence length 65 exceeds the model's 64 positions \(max_position_embeddings 64\)/)
  await t.rejects(model.logitsAt(ok, Int32Array.from([1, 1])), /row is outside the batch/)
  await t.rejects(model.logitsAt({ ...ok, seqLen: 4 }, Int32Array.from([0, 1])), { name: 'PetError', message: /inputIds has 3 elements, expected 4/ })
  await t.rejects(model.logitsAt({ ...ok, inputIds: [101, 103, 102] as any }, Int32Array.from([0, 1])), { name: 'PetError', message: /Expected Int32Array for inputIds/ })
  await t.rejects(model.scoreCandidates(ok, Int32Array.from([0, 1]), [5, 99999]), /candidate token id 99999/)
  await t.rejects(model.classify(ok), /the model has no classifier head/)
  const fine = await model.logitsAt(ok, Int32Array.from([0, 1]))
  t.equal(fine.length, 21128, 'the model still works after the errors')
  t.equal(maxAbsDiff(fine, before), 0, 'and gives the same logits as before them')
})

t.test('ModelFolder reads config.json and the tokenizer without any weights', async t => {
  const dir = tmpDir()
  for (const f of ['config.json', 'vocab.txt']) fs.copyFileSync(path.join(miniMlm, f), path.join(dir, f))
  const folder = ModelFolder.read(dir) // no model.safetensors here: nothing but config and vocabulary is read
  t.equal(folder.family, 'bert')
  t.equal(folder.isCausal, false)
  t.equal(folder.maxPositions, 512)
  t.equal(folder.config.vocabSize, 21128)
  t.equal(folder.tokenizer.maskId, 103)
  const gpt = ModelFolder.read(path.join(shared, 'models/zh-mini-gpt'))
  t.equal(gpt.family, 'gpt2')
  t.equal(gpt.isCausal, true)
  t.equal(gpt.config.wordEmbeddings, 'transformer.wte.weight')
  // the same checks as a load: an unknown architecture, a vocabulary of another size
  const bad = tmpDir()
  fs.copyFileSync(path.join(miniMlm, 'vocab.txt'), path.join(bad, 'vocab.txt'))
  fs.writeFileSync(path.join(bad, 'config.json'), JSON.stringify({ model_type: 'mamba', architectures: ['MambaForCausalLM'] }))
  t.throws(() => ModelFolder.read(bad), /mamba/)
  const config = JSON.parse(fs.readFileSync(path.join(miniMlm, 'config.json'), 'utf8'))
  fs.writeFileSync(path.join(bad, 'config.json'), JSON.stringify({ ...config, vocab_size: 100 }))
  t.throws(() => ModelFolder.read(bad), { code: 'EMODEL', message: /vocab.txt has 21128 entries but config.json says vocab_size 100/ })
  t.throws(() => ModelFolder.read(path.join(bad, 'nope')), { code: 'ENOENT' })
})
