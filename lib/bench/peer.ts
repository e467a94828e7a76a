// The peer: transformers.js (@huggingface/transformers over onnxruntime-node, CPU, fp32) scoring the very same
// padded batches on the ONNX export of the same weights. It returns full-vocabulary logits at every position;
// the verbalizer tokens' logits are read at the [MASK] slots and turned into labels exactly as ours are.
import * as path from 'node:path'
import { padBatch } from '../batch'
import { PetError } from '../errors'
import { argmax, labelScores } from '../pet/label-scores'
import { encoderFlops, headFlops, prepareInputs, readShape, timeBatchSizes } from './inputs'
import { maxRssMb, type BatchSizeResult, type ScoreJob, type ScoreRunResult } from './jobs'
import { summarise } from './batch-result'
import * as fs from 'node:fs'

// biome-ignore lint/suspicious/noExplicitAny: an optional dev dependency loaded at run time, with no types to import
type TransformersModule = any

export function loadTransformers (): TransformersModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require('@huggingface/transformers')
  } catch (err) {
    throw new PetError('the transformers.js peer needs the dev dependency @huggingface/transformers ' +
      `(ONNXRUNTIME_NODE_INSTALL=skip npm install -D --ignore-scripts @huggingface/transformers), or pass --no-peer (${(err as Error).message})`, 'ENOPEER')
  }
}

/** The version in a package's package.json, found above its resolved entry point (its "exports" hide the file). */
function packageVersion (name: string): string {
  try {
    let dir = path.dirname(require.resolve(name))
    while (dir !== path.dirname(dir)) {
      const file = path.join(dir, 'package.json')
      if (fs.existsSync(file)) {
        const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string, version?: string }
        if (pkg.name === name && pkg.version) return pkg.version
      }
      dir = path.dirname(dir)
    }
  } catch {}
  return 'unknown'
}

export async function runPeerScore (job: ScoreJob): Promise<ScoreRunResult> {
  if (!job.peerModel) throw new PetError('no peer model directory given', 'EINVAL')
  const dir = path.resolve(job.peerModel)
  if (!fs.existsSync(path.join(dir, 'onnx', 'model.onnx'))) {
    throw new PetError(`${dir}: no onnx/model.onnx (a transformers.js model folder is needed; --peer-model DIR or --no-peer)`, 'ENOENT')
  }
  const inputs = prepareInputs(job)
  const tf = loadTransformers()
  tf.env.allowRemoteModels = false
  tf.env.localModelPath = path.dirname(dir) + path.sep
  const name = path.basename(dir)
  const t0 = performance.now()
  const model = await tf.AutoModelForMaskedLM.from_pretrained(name, { dtype: 'fp32', device: 'cpu' })
  const loadMs = performance.now() - t0
  const shape = readShape(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'))
  const { encoded, verbalizer, pattern, gold } = inputs
  const V = shape.vocabSize
  const S = pattern.maskCount
  const C = verbalizer.candidates.length
  const lengths = encoded.map(e => e.inputIds.length)
  const labels = new Array<number>(encoded.length)
  // single-slot verbalizers are decided on raw logits (as ours are); the normaliser is needed only for several slots
  const needLogZ = S > 1
  const int64 = (a: Int32Array, dims: number[]) => new tf.Tensor('int64', BigInt64Array.from(a, x => BigInt(x)), dims)

  // transformers.js tokenizes the filled-in pattern text; its truncation drops the closing [SEP], so it
  // tokenizes in full and our rule is applied to its ids (prefix patterns: keep the head, end with [SEP]).
  let tokenizerAgree: number | undefined
  let tokenizerChecked: number | undefined
  if (job.checkTokenizer) {
    const tokenizer = await tf.AutoTokenizer.from_pretrained(name)
    tokenizerAgree = 0
    tokenizerChecked = 0
    inputs.texts.forEach((fields, i) => {
      const ours = encoded[i].inputIds
      if (encoded[i].truncated > 0 && !pattern.isPrefix) return
      const text = pattern.pieces.map(p => p.kind === 'text' ? p.value : p.kind === 'mask' ? '[MASK]'
        : p.kind === 'special' ? p.token : fields[pattern.fields.indexOf(p.name)]).join('')
      let ids = Array.from(tokenizer(text).input_ids.data as BigInt64Array, Number)
      if (encoded[i].truncated > 0) ids = [...ids.slice(0, ours.length - 1), ids[ids.length - 1]]
      tokenizerChecked!++
      if (ids.length === ours.length && ids.every((id, k) => id === ours[k])) tokenizerAgree!++
    })
  }

  const split = { prepMs: 0, callMs: 0, postMs: 0 }
  const runBatch = async (bucket: number[]): Promise<void> => {
    const t0 = performance.now()
    const items = bucket.map(i => encoded[i])
    const batch = padBatch(items, inputs.tokenizer.padId)
    const dims = [batch.batchSize, batch.seqLen]
    const feeds = {
      input_ids: int64(batch.inputIds, dims),
      attention_mask: int64(batch.attentionMask!, dims),
      token_type_ids: int64(batch.tokenTypeIds!, dims)
    }
    const t1 = performance.now()
    const out = await model(feeds)
    const t2 = performance.now()
    const data = out.logits.data as Float32Array
    const T = batch.seqLen
    bucket.forEach((index, b) => {
      const logits = new Float32Array(S * C)
      const logZ = new Float32Array(S)
      items[b].maskPositions.forEach((col, s) => {
        const row = data.subarray((b * T + col) * V, (b * T + col + 1) * V)
        verbalizer.candidates.forEach((id, c) => { logits[s * C + c] = row[id] })
        if (!needLogZ) return
        let max = -Infinity
        for (let k = 0; k < V; k++) if (row[k] > max) max = row[k]
        let sum = 0
        for (let k = 0; k < V; k++) sum += Math.exp(row[k] - max)
        logZ[s] = max + Math.log(sum)
      })
      labels[index] = argmax(labelScores(verbalizer, logits, logZ))
    })
    out.logits.dispose?.()
    split.prepMs += t1 - t0
    split.callMs += t2 - t1
    split.postMs += performance.now() - t2
  }

  let results: BatchSizeResult[]
  try {
    const timed = await timeBatchSizes(lengths, job.batchSizes, job.order, job.warmupBatches, runBatch,
      () => Object.assign(split, { prepMs: 0, callMs: 0, postMs: 0 }))
    // it computes the encoder and the MLM head (transform + full-vocabulary decoder) at every position
    results = timed.map(t => summarise(t.batchSize, t.buckets, lengths, t.latencies, t.seconds, labels, gold, shape, split,
      (B, T) => encoderFlops(shape, B, T) + headFlops(shape, B * T)))
  } finally {
    await model.dispose?.()
  }
  return {
    side: 'peer',
    n: encoded.length,
    loadMs,
    tokenizeMs: inputs.tokenizeMs,
    results,
    peakRssMb: maxRssMb(),
    tokenizerAgree,
    tokenizerChecked,
    versions: { '@huggingface/transformers': packageVersion('@huggingface/transformers'), 'onnxruntime-node': packageVersion('onnxruntime-node') }
  }
}
